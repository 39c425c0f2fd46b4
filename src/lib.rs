//! moltlog Worker: the Cloudflare adapter around moltlog-core.
