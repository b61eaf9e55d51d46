"""The deployed artifact: the interpreter it runs on, and running what `sam build` made the way Lambda does."""
