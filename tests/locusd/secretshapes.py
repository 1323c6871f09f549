"""One realistic fake per secret shape the scrubber claims (``locusd/privacy.py``), shared by
the shape tests and the upload tests: the token shapes of the redactor, each detect-secrets
detector it enables, a secret-named environment variable's value and a repository's own
``secret_patterns``. All values are made up; none is a live credential."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fake:
    """A line as it might appear in output or code, and the secret in it that must not leave."""

    line: str
    secret: str


def _fake(before: str, secret: str, after: str = "") -> Fake:
    return Fake(f"{before}{secret}{after}", secret)


_KEY_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{_KEY_BODY}\n{_KEY_BODY[::-1]}\n-----END RSA PRIVATE KEY-----"
_ALNUM = "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bD1fH3jL5nP7rT9vX2zC4"

#: The redactor's token shapes (``locusd.runner.redact``), one fake per pattern.
REDACTOR_SHAPES: dict[str, Fake] = {
    "anthropic": _fake("ANTHROPIC key seen in a log: ", "sk-ant-api03-" + _ALNUM + _ALNUM),
    # Cut short (as a truncated log line shows it): only the sk-ant- pattern is long enough.
    "anthropic, cut short": _fake("request failed for ", "sk-ant-api03-Xq9v"),
    "openai": _fake("client = OpenAI(", "sk-proj-" + _ALNUM[:40], ")"),
    "github classic": _fake("pushed with ", "ghp_" + _ALNUM[:36], " today"),
    "github fine-grained": _fake("pushed with ", "github_pat_11ABCDEFG0" + _ALNUM[:40]),
    "gitlab runner": _fake("registered with ", "glrt-" + _ALNUM[:20]),
    "aws access key id": _fake("the upload ran as ", "ASIAZ3MGJ8Q4PLXW2R7T", " yesterday"),
    "slack": _fake("posting as ", "xoxb-2093486712-" + _ALNUM[:24]),
    "stripe-style": _fake("charges use ", "sk_test_" + _ALNUM[:24]),
    "locus user token": _fake("LOCUS login ok: ", "lcu_" + _ALNUM[:32]),
    "locus worker token": _fake("worker registered with ", "lcw_" + _ALNUM[:32]),
    "private key block": Fake(f"found in id_rsa:\n{PRIVATE_KEY}\nend of file", _KEY_BODY),
}

#: One fake per detect-secrets detector the scrubber enables, each found by that detector
#: alone (no other enabled detector finds it).
DETECTOR_SHAPES: dict[str, Fake] = {
    "AWSKeyDetector": _fake("the build used ", "AKIAZ3MGJ8Q4PLXW2R7T", " to upload"),
    "ArtifactoryDetector": _fake("curl -H X-JFrog-Art-Api: ", "AKCp8jQ2nV7uR4sW9xY3zB6tK"),
    "AzureStorageKeyDetector": _fake(
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=",
        "Zm9vYmFyYmF6cXV4" * 5 + "Zm9vYmE=",  # 88 characters
        ";",
    ),
    "BasicAuthDetector": _fake("git clone https://deploy:", "Xq9vT2mL7pR4", "@git.example.com/a"),
    "CloudantDetector": _fake("cloudant_pass ", "4f9c2b7e1d" * 6 + "a3b5"),
    "DiscordBotTokenDetector": _fake(
        "bot runs as ", "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyz0"
    ),
    "IbmCloudIamDetector": _fake("ibm_cloud_iam_key ", _ALNUM[:44]),
    "IbmCosHmacDetector": _fake("cos_hmac_secret_access_key ", "4f9c2b7e1d" * 4 + "a3b5c7d9"),
    # The detector finds header and payload (the lazy regex stops before the signature):
    # with those masked, the token is unusable.
    "JwtTokenDetector": _fake(
        "Authorization: Bearer ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2N1cyJ9", ".c2lnbmF0dXJl"
    ),
    "KeywordDetector": _fake('db_password = "', "Xq9vT2mL7pR4sW8z", '"'),
    "MailchimpDetector": _fake("list synced with ", "0123456789abcdef0123456789abcdef-us14"),
    "NpmDetector": _fake("//registry.npmjs.org/:_authToken=", "npm_" + _ALNUM[:36]),
    "OpenAIDetector": _fake("client uses ", "sk-" + _ALNUM[:20] + "T3BlbkFJ" + _ALNUM[:20]),
    "PrivateKeyDetector": _fake("-----", "BEGIN OPENSSH PRIVATE KEY", "-----"),
    "PypiTokenDetector": _fake("twine upload -p ", "pypi-AgEIcHlwaS5vcmc" + _ALNUM + _ALNUM[:30]),
    "SendGridDetector": _fake("mail via ", "SG." + _ALNUM[:22] + "." + _ALNUM[:43]),
    "SlackDetector": _fake(
        "posted to ", "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/" + _ALNUM[:24]
    ),
    "SoftlayerDetector": _fake(
        "calls https://api.softlayer.com/soap/v3/", "ab3de5gh7j" * 6 + "k9mn"
    ),
    "SquareOAuthDetector": _fake("square app ", "sq0csp-" + _ALNUM[:43]),
    "StripeDetector": _fake("charged with ", "rk_live_" + _ALNUM[:24]),
    "TelegramBotTokenDetector": _fake("bot ", "123456789:" + _ALNUM[:35]),
    "TwilioKeyDetector": _fake("sms via ", "SK0123456789abcdef0123456789abcdef"),
}

#: Enabled, but detect-secrets reports only the prefix ("ghp", "glpat"), which the scrubber
#: drops as noise: these shapes are the redactor's to catch (its GitHub and GitLab patterns).
PREFIX_ONLY: dict[str, Fake] = {
    "GitHubTokenDetector": _fake("pushed with ", "gho_" + _ALNUM[:36]),
    "GitLabTokenDetector": _fake("pushed with ", "glpat-" + _ALNUM[:20], " today"),
}

#: A secret-named variable of the daemon's environment: its value has no shape at all.
ENV_NAME, ENV_VALUE = "DEPLOY_SERVICE_TOKEN", "plain-words-4711-horse"
ENVIRONMENT = {ENV_NAME: ENV_VALUE, "PATH": "/usr/local/bin:/usr/bin", "LANG": "C.UTF-8"}
#: The repository's own pattern (``secret_patterns`` in ``.locus.toml``) and a match of it.
REPO_PATTERN, REPO_SECRET = r"ACME-[0-9]{4}-[A-Z]{6}", "ACME-2024-QWERTY"
LOCUS_TOML = f"secret_patterns = ['{REPO_PATTERN}']\n"


def every_fake() -> dict[str, Fake]:
    """All of the above, by a name that says which net must catch it."""
    return {
        **{f"shape {k}": v for k, v in REDACTOR_SHAPES.items()},
        **{f"detector {k}": v for k, v in {**DETECTOR_SHAPES, **PREFIX_ONLY}.items()},
        "environment value": _fake(f"echo ${ENV_NAME} prints ", ENV_VALUE),
        "repository pattern": _fake("the licence is ", REPO_SECRET, " (internal)"),
    }
