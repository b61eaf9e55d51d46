"""`python -m completion_tagger`: the same program as the `completion-tagger` console script."""

from completion_tagger.cli import main

main()
