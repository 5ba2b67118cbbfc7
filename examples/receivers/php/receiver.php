<?php
// A fluxhook receiver in PHP, no extensions beyond the standard ones.
//
//   WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:9000 receiver.php
//
// Behind Apache or nginx + PHP-FPM the same file works as the script the
// webhook URL points to. For each POST it checks both signatures fluxhook
// sends, X-Workflux-Signature and the Standard Webhooks webhook-signature,
// writes one line to the server's log (stderr)
//
//   delivery event=evt_... attempt=1 verified
//   delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...
//
// and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
// several secrets separated by spaces (while you rotate: the new one and the
// old one); each signature must then verify with one of them.

const TOLERANCE_SECONDS = 5 * 60; // how far webhook-timestamp may be from now

// X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed with
// the whole secret string ("whsec_" included). Returns null when it matches,
// else what is wrong.
function verify_workflux(string $secret, string $body, ?string $signature): ?string
{
    if ($signature === null || $signature === '') {
        return 'X-Workflux-Signature: missing';
    }
    $expected = hash_hmac('sha256', $body, $secret);
    if (!hash_equals($expected, strtolower(trim($signature)))) {
        return 'X-Workflux-Signature: does not match';
    }
    return null;
}

// webhook-signature (Standard Webhooks): "v1," + base64 HMAC-SHA256 of
// "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part of
// the secret after "whsec_". Several space-separated signatures arrive while a
// secret rotation runs: any one matching is enough. Returns null when valid,
// else what is wrong.
function verify_standard(string $secret, ?string $id, ?string $timestamp, ?string $signatures,
                         string $body, ?int $now = null): ?string
{
    if ($id === null || $id === '' || $timestamp === null || $timestamp === ''
        || $signatures === null || $signatures === '') {
        return 'webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature';
    }
    if (!ctype_digit($timestamp)) {
        return 'webhook-timestamp: not a number';
    }
    $now = $now ?? time();
    if (abs($now - (int)$timestamp) > TOLERANCE_SECONDS) {
        return 'webhook-timestamp: more than ' . TOLERANCE_SECONDS . ' s from now';
    }
    $key = base64_decode(substr($secret, strlen('whsec_')), true);
    if ($key === false) {
        return 'webhook-signature: the secret is not whsec_ followed by base64';
    }
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $key, true));
    foreach (explode(' ', $signatures) as $entry) {
        $parts = explode(',', $entry, 2);
        if (count($parts) === 2 && $parts[0] === 'v1' && hash_equals($expected, $parts[1])) {
            return null;
        }
    }
    return 'webhook-signature: does not match';
}

// A request header, or null: PHP puts "X-Workflux-Event-Id" in
// $_SERVER['HTTP_X_WORKFLUX_EVENT_ID'].
function header_value(string $name): ?string
{
    return $_SERVER['HTTP_' . strtoupper(str_replace('-', '_', $name))] ?? null;
}

// Both checks, each passing with any one of $secrets. Returns null or what is
// wrong (as found with the first secret).
function verify_delivery(array $secrets, string $body): ?string
{
    $checks = [
        fn($s) => verify_workflux($s, $body, header_value('X-Workflux-Signature')),
        fn($s) => verify_standard($s, header_value('webhook-id'), header_value('webhook-timestamp'),
                                  header_value('webhook-signature'), $body),
    ];
    foreach ($checks as $check) {
        $problems = array_map($check, $secrets);
        if (!in_array(null, $problems, true)) {
            return $problems[0];
        }
    }
    return null;
}

function log_line(string $line): void
{
    file_put_contents('php://stderr', $line . "\n");
}

$secrets = preg_split('/ +/', getenv('WEBHOOK_SECRET') ?: '', -1, PREG_SPLIT_NO_EMPTY);
$valid = fn($s) => strncmp($s, 'whsec_', 6) === 0;
if (count($secrets) === 0 || count(array_filter($secrets, $valid)) !== count($secrets)) {
    log_line('receiver: set WEBHOOK_SECRET to the endpoint\'s secret (whsec_...)');
    http_response_code(500);
    return;
}
if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    http_response_code(405);
    echo "POST only\n";
    return;
}
$body = file_get_contents('php://input'); // the raw bytes, before any json_decode
$where = 'event=' . (header_value('X-Workflux-Event-Id') ?? '-')
    . ' attempt=' . (header_value('X-Workflux-Attempt') ?? '-');
$problem = verify_delivery($secrets, $body);
header('Content-Type: text/plain');
if ($problem !== null) {
    log_line("delivery $where not verified: $problem");
    http_response_code(401);
    echo "invalid signature\n";
    return;
}
log_line("delivery $where verified");
// Handle json_decode($body, true) here, or queue it and answer at once.
http_response_code(200);
echo "ok\n";
