"""The same integration with voip24h.client: typed records, retries, errors as exceptions.

It needs the voip24h package. In a clone, after ./scripts/demo (or ./scripts/test) made
.venv, run it with that venv's Python:

    export VOIP24H_PARTNER_SECRET=...
    .venv/bin/python examples/python/with_client.py getUserDate 137 01/07/2018 30/07/2018

Elsewhere: pip install voip24h (or pip install -e PATH_OF_THE_CLONE), then python3.
"""

import os
import sys

try:
    from voip24h.client import ApiError, Client
except ImportError:
    sys.exit(
        "with_client.py needs the voip24h package: run it with the clone's venv\n"
        "  .venv/bin/python examples/python/with_client.py REQUEST_TYPE ARGS...\n"
        "or install it first: pip install -e PATH_OF_THE_CLONE"
    )

FIELDS = ("callDate", "callId", "user", "phoneNumber", "callType", "callStatus")


def main(argv):
    if not argv:
        print("usage: with_client.py REQUEST_TYPE ARGS...   (as partner.py)", file=sys.stderr)
        return 2
    request_type, values = argv[0], argv[1:]
    url = os.environ.get("VOIP24H_URL", "http://127.0.0.1:8024")
    with Client(url, os.environ["VOIP24H_PARTNER_SECRET"]) as client:
        methods = {
            "getUser": client.get_user,  # (user)
            "getDate": client.get_date,  # (from_date, to_date)
            "getUserDate": client.get_user_date,  # (user, from_date, to_date)
            "getCallData": client.get_call_data,  # (call_id)
            "getStats": client.get_stats,  # (from_date, to_date) -> StatsEntry list
            "recordingListen": client.recording_listen,  # (call_id) -> link
            "recordingDownload": client.recording_download,  # (call_id) -> link
        }
        try:
            result = methods[request_type](*values)
        except ApiError as error:
            print(f"error {error.error_code} (HTTP {error.status}): {error.resp_msg}", file=sys.stderr)
            return 1
    if isinstance(result, str):  # a recording link
        print(result)
        return 0
    for item in result:
        if request_type == "getStats":
            print(f"{item.period}\t{item.user}\t{item.total}\t{item.answered}\t{item.talk_time}")
        else:
            # item.call_date is an aware datetime in the PBX's zone (Asia/Ho_Chi_Minh by default)
            wire = item.to_wire()
            print("\t".join(wire[name] for name in FIELDS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
