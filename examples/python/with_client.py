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
