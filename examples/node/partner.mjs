// A voip24h partner integration for Node.js 18+ (built-in fetch, no packages).
//
//   export VOIP24H_PARTNER_SECRET=...
//   node partner.mjs getUser 137
//   node partner.mjs getDate 01/07/2018 30/07/2018
//   node partner.mjs getUserDate 137 01/07/2018 30/07/2018
//   node partner.mjs getCallData 1532857052.131132
//   node partner.mjs getStats 01/07/2018 30/07/2018
//   node partner.mjs recordingListen 1532857052.131132      (or recordingDownload)
//
// Prints one line per record (callDate, callId, user, phoneNumber, callType, callStatus,
// tab-separated), per stats entry (period, user, total, answered, talkTime), or the link;
// on failure prints the errorCode and respMsg and exits with 1.

const URL = (process.env.VOIP24H_URL ?? "http://127.0.0.1:8024") + "/api/v1/partner/voip24h";
const FIELDS = ["callDate", "callId", "user", "phoneNumber", "callType", "callStatus"];
const STATS_FIELDS = ["period", "user", "total", "answered", "talkTime"];
const PARAMS = {
  getUser: ["user"],
  getDate: ["fromDate", "toDate"],
  getUserDate: ["user", "fromDate", "toDate"],
  getCallData: ["callId"],
  getStats: ["fromDate", "toDate"],
  recordingListen: ["callId"],
  recordingDownload: ["callId"],
};

async function call(requestType, data) {
  const response = await fetch(URL, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      requestType,
      partnerSecret: process.env.VOIP24H_PARTNER_SECRET,
      data,
    }),
    signal: AbortSignal.timeout(30_000),
  });
  return [response.status, await response.json()]; // -1 answers are JSON too
}

const [requestType, ...values] = process.argv.slice(2);
const names = PARAMS[requestType];
if (!names) {
  const kinds = Object.entries(PARAMS).map(([kind, args]) => `  ${kind} ${args.join(" ")}`);
  console.error(["usage: node partner.mjs REQUEST_TYPE ARGS...", "request types:", ...kinds].join("\n"));
  process.exit(2);
}
if (values.length !== names.length) {
  console.error(`usage: node partner.mjs ${requestType} ${names.join(" ")}`);
  process.exit(2);
}
const data = Object.fromEntries(names.map((name, i) => [name, values[i]]));
const [status, answer] = await call(requestType, data);
if (answer.respCode !== 0) {
  console.error(`error ${answer.errorCode} (HTTP ${status}): ${answer.respMsg}`);
  process.exit(1);
}
if (!Array.isArray(answer.data)) {
  console.log(answer.data.link); // recordingListen, recordingDownload
} else {
  const fields = requestType === "getStats" ? STATS_FIELDS : FIELDS;
  for (const item of answer.data) {
    console.log(fields.map((name) => item[name]).join("\t"));
  }
}
