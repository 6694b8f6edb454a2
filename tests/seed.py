"""The protocol's seed: its partner secret, its three request samples byte for byte, and the
records it answers (/work/shared/spec/voip24h-partner-api.md)."""

from __future__ import annotations

SEED_SECRET = "rdn7mllWMqND7S5DnVz8"
SEED_FIELDS = ["callId", "user", "phoneNumber", "callType", "callStatus", "callDate"]


SEED_GET_USER = b"""{
\t"requestType": "getUser",
\t"partnerSecret": "rdn7mllWMqND7S5DnVz8",
\t"data": {
\t\t"user": "137"
\t}
}"""


SEED_GET_DATE = b"""{
\t"requestType": "getDate",
\t"partnerSecret": "rdn7mllWMqND7S5DnVz8",
\t"data": {
\t\t"user": "137",
\t\t"fromDate": "01/01/2018",
\t\t"toDate": "30/07/2018"
\t}
}"""
SEED_GET_USER_DATE = SEED_GET_DATE.replace(b'"getDate"', b'"getUserDate"')


SEED_RECORDS = [
    {
        "callId": "1532857052.131132",
        "user": "137",
        "phoneNumber": "0982056720",
        "callType": "EXTERNAL",
        "callStatus": "NO ANSWER",
        "callDate": "2018-07-29 16:37:32",
    },
    {
        "callId": "1532834934.130789",
        "user": "137",
        "phoneNumber": "0971828252",
        "callType": "EXTERNAL",
        "callStatus": "NO ANSWER",
        "callDate": "2018-07-29 10:28:54",
    },
]
