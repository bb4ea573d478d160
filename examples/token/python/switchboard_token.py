#!/usr/bin/env python3
# Signs the identity token a page hands to Switchboard (sv_setuserinfo(id, name, token)) and
# prints it: `python3 switchboard_token.py USER_ID NAME`, the secret in SWITCHBOARD_JWT_SECRET, and
# SWITCHBOARD_JWT_AUDIENCE / SWITCHBOARD_JWT_ISSUER when the server checks them.
# pip install PyJWT  (Debian, Ubuntu: apt-get install python3-jwt)
import os
import sys
import time

import jwt


def switchboard_token(secret, user_id, name):
    """The token for one user; in a web backend, call it for the logged-in user."""
    claims = {"sub": user_id, "name": name, "exp": int(time.time()) + 5 * 60}
    for claim, variable in (("aud", "SWITCHBOARD_JWT_AUDIENCE"), ("iss", "SWITCHBOARD_JWT_ISSUER")):
        if os.environ.get(variable):
            claims[claim] = os.environ[variable]
    # HS256 is the one algorithm Switchboard accepts.
    return jwt.encode(claims, secret, algorithm="HS256")


if __name__ == "__main__":
    secret = os.environ.get("SWITCHBOARD_JWT_SECRET")
    if not secret or len(sys.argv) != 3:
        sys.exit("usage: SWITCHBOARD_JWT_SECRET=... python3 switchboard_token.py USER_ID NAME")
    print(switchboard_token(secret, sys.argv[1], sys.argv[2]))
