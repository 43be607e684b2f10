//! The keys every `postrust` of the stack accepts or refuses, and the
//! `postrust` release they are written against.

/// The JWT secret every `postrust` of the stack is started with (HS256).
pub const JWT_SECRET: &str = "aimharder-refresh-test-jwt-secret-0123456789";

/// `{"role":"service_role","iss":"supabase"}` signed with [`JWT_SECRET`], no
/// `exp`: what a Supabase project's service key is. Its role has BYPASSRLS.
pub const SERVICE_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ.\
HVtf3587Z-YsZLHYihVpNlC-CtjEX-7SOeNT9D3yxBc";

/// `{"role":"anon","iss":"supabase"}` signed with [`JWT_SECRET`]: the public
/// key. Row level security leaves it no rows of `auth_sessions`.
pub const ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlIn0.\
F6NTwsXnmISrnYO-N7fIXEAmZZPEURpEhtKXte6Aap8";

/// The service key's claims signed with another secret
/// (`some-other-project-jwt-secret-9876543210abcd`): a key from the wrong
/// project, which the server must refuse.
pub const WRONG_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UifQ.\
7v_1G7B7-9Zg6pkMI0oNeZyFThX8QwYEFXKRBLbdRFM";

/// The `postrust` release the tests are written against; `scripts/test-deps.sh`
/// installs exactly this one, and [`super::TestDb`] refuses any other.
pub const POSTRUST_VERSION: &str = "3.1.0";
