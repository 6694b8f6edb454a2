"""A voip24h partner integration with Python's standard library only.

    export VOIP24H_PARTNER_SECRET=...        # never put the secret in code or on the command line
    python3 partner.py getUser 137
    python3 partner.py getDate 01/07/2018 30/07/2018
    python3 partner.py getUserDate 137 01/07/2018 30/07/2018
    python3 partner.py getCallData 1532857052.131132
    python3 partner.py getStats 01/07/2018 30/07/2018
    python3 partner.py recordingListen 1532857052.131132      (or recordingDownload)

Prints one line per record (callDate, callId, user, phoneNumber, callType, callStatus,
tab-separated), per stats entry (period, user, total, answered, talkTime), or the link;
on failure prints the errorCode and respMsg and exits with 1.
"""

import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("VOIP24H_URL", "http://127.0.0.1:8024") + "/api/v1/partner/voip24h"
FIELDS = ("callDate", "callId", "user", "phoneNumber", "callType", "callStatus")
STATS_FIELDS = ("period", "user", "total", "answered", "talkTime")
PARAMS = {
    "getUser": ("user",),
    "getDate": ("fromDate", "toDate"),
    "getUserDate": ("user", "fromDate", "toDate"),
    "getCallData": ("callId",),
    "getStats": ("fromDate", "toDate"),
    "recordingListen": ("callId",),
    "recordingDownload": ("callId",),
}


def call(request_type, data):
    """POST one request; return the decoded answer (success or -1) and the HTTP status."""
    body = {"requestType": request_type, "partnerSecret": os.environ["VOIP24H_PARTNER_SECRET"]}
    body["data"] = data
    request = urllib.request.Request(
        URL, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:  # -1 answers come with a 4xx/5xx status
        return error.code, json.load(error)


def usage():
    """The request types and their arguments, on stderr; exit status 2 as for any usage error."""
    lines = ["usage: python3 partner.py REQUEST_TYPE ARGS...", "request types:"]
    lines += [f"  {kind} {' '.join(names)}" for kind, names in PARAMS.items()]
    print("\n".join(lines), file=sys.stderr)
    return 2


def main(argv):
    if not argv or argv[0] not in PARAMS:
        return usage()
    request_type, values = argv[0], argv[1:]
    names = PARAMS[request_type]
    if len(values) != len(names):
        print(f"usage: python3 partner.py {request_type} {' '.join(names)}", file=sys.stderr)
        return 2
    status, answer = call(request_type, dict(zip(names, values)))
    if answer["respCode"] != 0:
        print(f"error {answer['errorCode']} (HTTP {status}): {answer['respMsg']}", file=sys.stderr)
        return 1
    data = answer["data"]
    if isinstance(data, dict):  # recordingListen, recordingDownload: {"link": ...}
        print(data["link"])
        return 0
    fields = STATS_FIELDS if request_type == "getStats" else FIELDS
    for item in data:
        print("\t".join(str(item[name]) for name in fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
