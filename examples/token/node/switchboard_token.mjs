#!/usr/bin/env node
// Signs the identity token a page hands to Switchboard (sv_setuserinfo(id, name, token)) and
// prints it: `node switchboard_token.mjs USER_ID NAME`, the secret in SWITCHBOARD_JWT_SECRET, and
// SWITCHBOARD_JWT_AUDIENCE / SWITCHBOARD_JWT_ISSUER when the server checks them.
// npm install jsonwebtoken
import jwt from 'jsonwebtoken';

/** The token for one user; in a web backend, call it for the logged-in user. */
function switchboardToken(secret, userId, name) {
  const options = { algorithm: 'HS256', expiresIn: '5m' }; // HS256 is the one Switchboard accepts
  if (process.env.SWITCHBOARD_JWT_AUDIENCE) options.audience = process.env.SWITCHBOARD_JWT_AUDIENCE;
  if (process.env.SWITCHBOARD_JWT_ISSUER) options.issuer = process.env.SWITCHBOARD_JWT_ISSUER;
  return jwt.sign({ sub: userId, name }, secret, options);
}

const [userId, name] = process.argv.slice(2);
const secret = process.env.SWITCHBOARD_JWT_SECRET;
if (!secret || !userId || !name) {
  console.error('usage: SWITCHBOARD_JWT_SECRET=… node switchboard_token.mjs USER_ID NAME');
  process.exit(2);
}
console.log(switchboardToken(secret, userId, name));
