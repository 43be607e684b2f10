//! The accept loop every server of the kit runs.

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};

/// Accept connections on `listener` in a task of its own, for as long as the
/// runtime lives, and serve each one in a task of its own: `serve` is called
/// as a connection is accepted, and the future it returns is spawned.
///
/// ```ignore
/// let server = self.clone();
/// serve_each(listener, move |stream| {
///     let server = server.clone();
///     async move { server.serve(stream).await }
/// });
/// ```
pub fn serve_each<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
}
