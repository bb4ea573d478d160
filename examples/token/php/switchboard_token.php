<?php
// Signs the identity token a page hands to Switchboard (sv_setuserinfo(id, name, token)) and
// prints it: `php switchboard_token.php USER_ID NAME`, the secret in SWITCHBOARD_JWT_SECRET, and
// SWITCHBOARD_JWT_AUDIENCE / SWITCHBOARD_JWT_ISSUER when the server checks them.
// composer require firebase/php-jwt
require __DIR__ . '/vendor/autoload.php';

use Firebase\JWT\JWT;

/** The token for one user; in a web backend, call it for the logged-in user. */
function switchboard_token(string $secret, string $userId, string $name): string
{
    $claims = ['sub' => $userId, 'name' => $name, 'exp' => time() + 5 * 60];
    if (getenv('SWITCHBOARD_JWT_AUDIENCE')) {
        $claims['aud'] = getenv('SWITCHBOARD_JWT_AUDIENCE');
    }
    if (getenv('SWITCHBOARD_JWT_ISSUER')) {
        $claims['iss'] = getenv('SWITCHBOARD_JWT_ISSUER');
    }
    // HS256 is the one algorithm Switchboard accepts.
    return JWT::encode($claims, $secret, 'HS256');
}

$secret = getenv('SWITCHBOARD_JWT_SECRET');
if (!$secret || $argc !== 3) {
    fwrite(STDERR, "usage: SWITCHBOARD_JWT_SECRET=... php switchboard_token.php USER_ID NAME\n");
    exit(2);
}
echo switchboard_token($secret, $argv[1], $argv[2]), "\n";
