// A voip24h webhook receiver with Node.js only: verifies each delivery's Standard
// Webhooks signature, drops repeats by webhook-id, prints the event.
//
//   export VOIP24H_WEBHOOK_SECRET=whsec_...   # the secret webhookAdd showed, once
//   node webhook_receiver.mjs 8025            # listens on 127.0.0.1:8025
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const key = Buffer.from(process.env.VOIP24H_WEBHOOK_SECRET.replace(/^whsec_/, ""), "base64");
const seen = new Set(); // delivery is at least once: the same webhook-id may come twice

function verify(headers, body) {
  const id = headers["webhook-id"];
  const stamp = headers["webhook-timestamp"];
  if (!id || !/^\d+$/.test(stamp || "") || Math.abs(Date.now() / 1000 - Number(stamp)) > 300) {
    return false;
  }
  const expected = createHmac("sha256", key)
    .update(Buffer.concat([Buffer.from(`${id}.${stamp}.`), body]))
    .digest();
  return (headers["webhook-signature"] || "").split(" ").some((signature) => {
    const [version, value] = signature.split(",");
    const given = Buffer.from(value || "", "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (!verify(req.headers, body)) {
      res.writeHead(401).end();
      return;
    }
    const event = JSON.parse(body);
    if (!seen.has(req.headers["webhook-id"])) {
      seen.add(req.headers["webhook-id"]);
      const d = event.data || {};
      console.log([event.sequence, event.type, d.callId, d.user, d.callStatus, d.duration].join("\t"));
    }
    res.writeHead(204).end();
  });
}).listen(Number(process.argv[2] || 8025), "127.0.0.1");
