"""Where the local stack's resources live: moto's default account and the region used throughout.

Kept apart from `aws_endpoint` (which imports moto) so light modules, such as the Lambda context, can
name them without loading the emulator.
"""

REGION = "us-east-1"
# moto's default account; queue and rule ARNs carry it.
ACCOUNT_ID = "123456789012"
