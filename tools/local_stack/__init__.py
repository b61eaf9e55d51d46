"""The embedded local stack: moto's server as the AWS endpoint, an SQS event source mapping, and `run`.

`python -m local_stack run` (what `make run` calls) provisions what `template.yaml` declares on moto,
points the Lambda handler at it and at the local OpenAI server, sends sample tag requests and runs the
handler in several Lambda-like containers, each polling the queue the way Lambda's SQS event source
mapping would, until every message has ended.
"""

import sys
from pathlib import Path

# The function's own code (`tagger`), which the local stack runs and whose models it reads, lives in
# functions/ as on Lambda, where it is the code root rather than a package.
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))
