//! The accept loop every server of the kit runs.

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};

/// Accept connections on `listener` in a task of its own, for as long as the
/// runtime lives, and serve each one in a task of its own: `serve` gets a
/// clone of `server` (the state the connections share) and the connection,
/// and the future it returns is spawned.
///
/// ```ignore
/// serve_each(listener, self.clone(), |server, stream| async move {
///     server.serve(stream).await
/// });
/// ```
pub fn serve_each<S, F, Fut>(listener: TcpListener, server: S, serve: F)
where
    S: Clone + Send + 'static,
    F: Fn(S, TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(server.clone(), stream));
        }
    });
}
