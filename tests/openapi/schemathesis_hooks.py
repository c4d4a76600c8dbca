"""schemathesis hooks for run_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

A Status List Token (`application/statuslist+jwt`, draft-ietf-oauth-status-list-18 §8.1) is a
compact JWT: its body is validated as the string the `StatusListToken` schema describes.
"""

import schemathesis


@schemathesis.deserializer("application/statuslist+jwt")
def status_list_token(ctx, response):
    return response.content.decode("ascii")
