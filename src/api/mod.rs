//! Pure pieces of the HTTP API shared by the Worker and its Durable Objects.

pub mod route;
