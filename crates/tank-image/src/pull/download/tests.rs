//! [`Downloads`] alone: waiting for a layer's task, and aborting every task left when it
//! goes, so that no error path leaves a download running.

use std::sync::Arc;
use std::time::Duration;

use super::Downloads;
use crate::Error;
use crate::pull::follow::{Feed, FeedGuard, Outcome};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A safety net against a hang, not a timing assertion: the awaited event comes at once
/// when the code is right.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn dropping_the_downloads_aborts_the_tasks_not_taken() {
    runtime().block_on(async {
        let feed = Arc::new(Feed::default());
        let guard = FeedGuard::new(Arc::clone(&feed));
        let (gone, dropped) = tokio::sync::oneshot::channel::<()>();
        let mut downloads = Downloads::default();
        downloads.push(None);
        downloads.push(Some(tokio::spawn(async move {
            let _guard = guard;
            let _gone = gone;
            std::future::pending::<Result<u64, Error>>().await
        })));
        tokio::task::yield_now().await;
        assert_eq!(feed.outcome(), Outcome::Pending);

        drop(downloads);
        // The receiver ends when the task's future, and so its guard, is dropped.
        let ended = tokio::time::timeout(HANG, dropped).await;
        assert!(matches!(ended, Ok(Err(_))), "the task was not aborted");
        assert_eq!(feed.outcome(), Outcome::Failed);
    });
}

#[test]
fn finish_waits_for_a_layer_task_and_says_none_for_a_layer_not_downloaded() {
    runtime().block_on(async {
        let mut downloads = Downloads::default();
        downloads.push(None);
        downloads.push(Some(tokio::spawn(async { Ok(42) })));
        downloads.push(Some(tokio::spawn(async {
            Err(Error::Internal("the download failed".to_owned()))
        })));

        assert!(downloads.finish(0).await.is_none());
        assert!(matches!(downloads.finish(1).await, Some(Ok(42))));
        let failed = downloads.finish(2).await;
        assert!(
            matches!(failed, Some(Err(Error::Internal(_)))),
            "{failed:?}"
        );
        // Each task is taken once; past the end there is nothing.
        assert!(downloads.finish(1).await.is_none());
        assert!(downloads.finish(3).await.is_none());
    });
}

#[test]
fn a_panicking_task_is_an_internal_error() {
    runtime().block_on(async {
        let mut downloads = Downloads::default();
        downloads.push(Some(tokio::spawn(async {
            panic!("a download task panicked on purpose");
        })));
        let finished = downloads.finish(0).await;
        assert!(
            matches!(finished, Some(Err(Error::Internal(_)))),
            "{finished:?}"
        );
    });
}
