<?php
// A voip24h webhook receiver in plain PHP: verifies each delivery's Standard Webhooks
// signature and prints the event. Run it with PHP's own server, or behind your web server:
//
//   export VOIP24H_WEBHOOK_SECRET=whsec_...   # the secret webhookAdd showed, once
//   php -S 127.0.0.1:8025 webhook_receiver.php
//
// Delivery is at least once: keep the webhook-id of each event you took (a database
// unique key does it) and skip one you have seen.

function voip24h_verify(string $secret, string $id, string $stamp, string $signatures, string $body): bool
{
    if ($id === '' || !ctype_digit($stamp) || abs(time() - (int) $stamp) > 300) {
        return false;
    }
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret));
    $expected = base64_encode(hash_hmac('sha256', "$id.$stamp.$body", $key, true));
    foreach (explode(' ', $signatures) as $signature) {
        $parts = explode(',', $signature, 2);
        if (count($parts) === 2 && $parts[0] === 'v1' && hash_equals($expected, $parts[1])) {
            return true;
        }
    }
    return false;
}

$body = file_get_contents('php://input');
$ok = voip24h_verify(
    getenv('VOIP24H_WEBHOOK_SECRET'),
    $_SERVER['HTTP_WEBHOOK_ID'] ?? '',
    $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '',
    $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '',
    $body
);
if (!$ok) {
    http_response_code(401);
    exit;
}
$event = json_decode($body, true);
$d = $event['data'] ?? [];
file_put_contents('php://stdout', implode("\t", [
    $event['sequence'], $event['type'], $d['callId'] ?? '', $d['user'] ?? '',
    $d['callStatus'] ?? '', $d['duration'] ?? '',
]) . "\n");
http_response_code(204);
