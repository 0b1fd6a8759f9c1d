// Package auth verifies credentials and evaluates permissions.
//
// # Model
//
// Users, roles and API tokens are replicated state (tandem.User,
// tandem.Role, tandem.APIToken) applied by the store; this package only
// reads them, through the State interface, on every request. Nothing here
// caches who a user is or what they may do beyond one request, except the
// verified-password cache below, whose keys include the user's version: a
// deleted user, a changed password or changed roles take effect on a node
// as soon as it applies the change.
//
// A principal's permissions are the union of its roles' permissions
// (Perms). cluster.admin implies everything. Attribute restrictions are
// per grant: a grant for table.read, table.insert or table.update covers an
// attribute when its Attributes list is empty or names it and its Except
// list does not; the principal may use the attribute if any of its grants
// covers it. The primary key is always covered.
//
// # Credentials
//
// Passwords are hashed with argon2id (HashPassword) in the PHC string
// format, parameters stored with the hash so they can be raised later
// without invalidating old hashes. API tokens ("tdk_<id>_<secret>") carry
// 256 random bits; the store keeps only the SHA-256 of the secret. A fast
// hash is enough there: with 256 bits of entropy no amount of guessing
// helps, while a slow hash would make every request pay for it.
//
// Authenticator handles the Authorization header: HTTP Basic or Bearer.
// argon2id costs tens of milliseconds by design, so successful Basic
// verifications are cached briefly in memory, keyed by an HMAC (under a
// per-process random key) of user, password and user version, and
// concurrent misses with the same credentials share one verification;
// failures are never cached. Failed logins are rate-limited per user and per client
// address, and at most MaxConcurrentHashes argon2 computations run at once
// so that a flood of logins cannot exhaust memory or starve Raft.
//
// Principals travel in the request context: NewContext and FromContext.
package auth
