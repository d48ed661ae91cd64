//! Waiting for the initial copy: every table synchronised and streaming.

use std::time::{Duration, Instant};

use crate::db::{Conn, DbError};
use crate::engine::events::EventKind;
use crate::engine::steps::detach::{connect_other, pause};
use crate::engine::steps::{Ctx, StepError};
use crate::statements::replication as sql;

/// Waits until every table is ready (`r`: synchronised and streaming).
/// A lost connection to the other database is opened again: the
/// subscription there carries on by itself once its server is back, and
/// meanwhile `[abort] slot_retained_wal` guards this server's disk.
pub(super) async fn wait_ready(
    ctx: &mut Ctx<'_>,
    other: &mut Conn,
    database: &str,
    name: &str,
    tables: usize,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut last_ready = usize::MAX;
    let mut down = false;
    loop {
        let rows = match other.client.query(sql::SYNC_STATES, &[&name]).await {
            Ok(rows) => rows,
            Err(e) => {
                let e = DbError::sql("reading the sync states", e);
                if !e.is_connection_lost() {
                    return Err(StepError::Failed(e.to_string()));
                }
                if !down {
                    down = true;
                    ctx.out.emit(EventKind::Notice {
                        message: format!(
                            "{e}: connecting to `{database}` again until it answers (its \
                             subscription resumes by itself; `cutover abort` stops the move)"
                        ),
                    });
                }
                pause(ctx, Duration::from_secs(1)).await?;
                if let Ok(conn) = connect_other(ctx, database).await {
                    *other = conn;
                }
                continue;
            }
        };
        if down {
            down = false;
            ctx.out.emit(EventKind::Notice {
                message: format!("`{database}` answers again"),
            });
        }
        let ready = rows.iter().filter(|r| r.get::<_, String>(1) == "r").count();
        if ready != last_ready {
            last_ready = ready;
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "{ready} of {tables} table(s) synchronised and streaming ({})",
                    crate::engine::events::short_duration(started.elapsed())
                ),
            });
        }
        if rows.len() == tables && ready == tables {
            return Ok(());
        }
        pause(ctx, Duration::from_millis(250)).await?;
    }
}
