<?php
// A voip24h partner integration for PHP 7.4+ (no extensions beyond json).
//
//   export VOIP24H_PARTNER_SECRET=...
//   php partner.php getUser 137
//   php partner.php getDate 01/07/2018 30/07/2018
//   php partner.php getUserDate 137 01/07/2018 30/07/2018
//   php partner.php getCallData 1532857052.131132
//   php partner.php getStats 01/07/2018 30/07/2018
//   php partner.php recordingListen 1532857052.131132      (or recordingDownload)
//
// Prints one line per record (callDate, callId, user, phoneNumber, callType, callStatus,
// tab-separated), per stats entry (period, user, total, answered, talkTime), or the link;
// on failure prints the errorCode and respMsg and exits with 1.

$url = (getenv('VOIP24H_URL') ?: 'http://127.0.0.1:8024') . '/api/v1/partner/voip24h';
$fields = ['callDate', 'callId', 'user', 'phoneNumber', 'callType', 'callStatus'];
$statsFields = ['period', 'user', 'total', 'answered', 'talkTime'];
$params = [
    'getUser' => ['user'],
    'getDate' => ['fromDate', 'toDate'],
    'getUserDate' => ['user', 'fromDate', 'toDate'],
    'getCallData' => ['callId'],
    'getStats' => ['fromDate', 'toDate'],
    'recordingListen' => ['callId'],
    'recordingDownload' => ['callId'],
];

function call(string $url, string $requestType, array $data): array
{
    $body = json_encode([
        'requestType' => $requestType,
        'partnerSecret' => getenv('VOIP24H_PARTNER_SECRET'),
        'data' => $data,
    ]);
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/json\r\n",
        'content' => $body,
        'timeout' => 30,
        'ignore_errors' => true, // -1 answers come with a 4xx/5xx status: read them anyway
    ]]);
    $text = file_get_contents($url, false, $context);
    if ($text === false) {
        fwrite(STDERR, "cannot reach $url\n");
        exit(1);
    }
    preg_match('{^HTTP/\S+ (\d+)}', $http_response_header[0], $match);
    return [(int) $match[1], json_decode($text, true)];
}

$requestType = $argv[1] ?? '';
$values = array_slice($argv, 2);
$names = $params[$requestType] ?? null;
if ($names === null || count($values) !== count($names)) {
    fwrite(STDERR, "usage: php partner.php REQUEST_TYPE ARGS...\n");
    exit(2);
}
[$status, $answer] = call($url, $requestType, array_combine($names, $values));
if ($answer['respCode'] !== 0) {
    fwrite(STDERR, "error {$answer['errorCode']} (HTTP $status): {$answer['respMsg']}\n");
    exit(1);
}
if (isset($answer['data']['link'])) { // recordingListen, recordingDownload
    echo $answer['data']['link'], "\n";
    exit(0);
}
$columns = $requestType === 'getStats' ? $statsFields : $fields;
foreach ($answer['data'] as $item) {
    echo implode("\t", array_map(fn ($name) => $item[$name], $columns)), "\n";
}
