"""One endpoint, many services (issue 24, first part): a signed request goes
to the service its credential scope names; STS's GetCallerIdentity answers
for the account root; a service nimbus does not offer gets an error naming
it, in the shape that service's protocol parses (the real aws CLI and
boto3 show it)."""

import unittest

import botocore.exceptions

from harness import ACCOUNT_ID, DaemonTestCase


class ServicesTest(DaemonTestCase):

    def test_sts_get_caller_identity_with_the_cli_and_boto3(self):
        out = self.daemon.aws_json("sts", "get-caller-identity")
        self.assertEqual(out["Account"], ACCOUNT_ID)
        self.assertEqual(out["Arn"], f"arn:aws:iam::{ACCOUNT_ID}:root")
        sts = self.daemon.boto3_client("sts")
        self.addCleanup(sts.close)
        self.assertEqual(sts.get_caller_identity()["Account"], ACCOUNT_ID)
        with self.assertRaises(botocore.exceptions.ClientError) as other:
            sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/x", RoleSessionName="session")
        self.assertEqual(other.exception.response["Error"]["Code"], "InvalidAction")
        self.assertIn("GetCallerIdentity", other.exception.response["Error"]["Message"])

    def test_sts_refuses_a_wrong_key(self):
        rc, _, err = self.daemon.aws("sts", "get-caller-identity", credentials=("AKIDNOBODY", "x" * 40))
        self.assertNotEqual(rc, 0)
        self.assertIn("InvalidClientTokenId", err)

    def test_services_nimbus_does_not_offer_are_named(self):
        cases = [
            ("kinesis", "list-streams"),            # JSON 1.1 (X-Amz-Target)
            ("dynamodb", "list-tables"),             # JSON 1.0
            ("sns", "list-topics"),                  # query
            ("s3api", "list-buckets"),               # REST-XML
            ("stepfunctions", "list-state-machines"),
            ("logs", "describe-log-groups"),
        ]
        for cli_service, operation in cases:
            rc, out, err = self.daemon.aws(cli_service, operation)
            self.assertNotEqual(rc, 0, (cli_service, out))
            self.assertIn("UnknownService", err, (cli_service, err))
            self.assertIn("nimbus does not offer the service", err, (cli_service, err))
            self.assertIn("it offers lambda, sqs, sts", err, (cli_service, err))
        # Lambda and SQS are still where they were.
        self.assertEqual(self.daemon.aws_json("lambda", "list-functions")["Functions"], [])
        self.assertIn("QueueUrl", self.daemon.aws_json("sqs", "create-queue", "--queue-name", "q"))


if __name__ == "__main__":
    unittest.main()
