"""The same integration with voip24h.client: typed records, retries, errors as exceptions.

    pip install voip24h            # or, in a clone: pip install -e .
    export VOIP24H_PARTNER_SECRET=...
    python3 with_client.py getUserDate 137 01/07/2018 30/07/2018
"""

import os
import sys

from voip24h.client import ApiError, Client

FIELDS = ("callDate", "callId", "user", "phoneNumber", "callType", "callStatus")


def main(argv):
    request_type, values = argv[0], argv[1:]
    url = os.environ.get("VOIP24H_URL", "http://127.0.0.1:8024")
    with Client(url, os.environ["VOIP24H_PARTNER_SECRET"]) as client:
        methods = {
            "getUser": client.get_user,  # (user)
            "getDate": client.get_date,  # (from_date, to_date)
            "getUserDate": client.get_user_date,  # (user, from_date, to_date)
            "getCallData": client.get_call_data,  # (call_id)
        }
        try:
            records = methods[request_type](*values)
        except ApiError as error:
            print(f"error {error.error_code} (HTTP {error.status}): {error.resp_msg}", file=sys.stderr)
            return 1
    for record in records:
        # record.call_date is an aware datetime in the PBX's zone (Asia/Ho_Chi_Minh by default)
        wire = record.to_wire()
        print("\t".join(wire[name] for name in FIELDS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
