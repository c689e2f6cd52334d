//! `creneau.operations.v1.DeadLetters`, served by every service that owns
//! a queue table: operators list what was set aside after every attempt
//! and send it again once the cause is fixed.

use creneau_proto::operations::v1::{self as pb, dead_letters_server::DeadLetters};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::db::queue::Queue;

const MAX_LIST: u32 = 500;

pub struct DeadLettersService {
    db: DatabaseConnection,
    queue: Queue,
}

impl DeadLettersService {
    pub fn new(db: DatabaseConnection, queue: Queue) -> pb::dead_letters_server::DeadLettersServer<Self> {
        pb::dead_letters_server::DeadLettersServer::new(Self { db, queue })
    }
}

#[tonic::async_trait]
impl DeadLetters for DeadLettersService {
    #[tracing::instrument(skip_all, fields(queue = self.queue.table))]
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => MAX_LIST,
            n => n.min(MAX_LIST),
        };
        let (letters, total) = self.queue.dead_letters(&self.db, limit).await.map_err(|e| crate::db::status(&e))?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: letters
                .into_iter()
                .map(|l| pb::DeadLetter {
                    id: l.id,
                    kind: l.kind,
                    reason: l.reason,
                    attempts: l.attempts,
                    created_at: l.created_at.to_rfc3339(),
                    dead_at: l.dead_at.to_rfc3339(),
                })
                .collect(),
            total,
        }))
    }

    #[tracing::instrument(skip_all, fields(queue = self.queue.table))]
    async fn replay_dead_letters(
        &self,
        request: Request<pb::ReplayDeadLettersRequest>,
    ) -> Result<Response<pb::ReplayDeadLettersResponse>, Status> {
        let r = request.into_inner();
        let ids = match (r.all, r.ids.is_empty()) {
            (true, true) => None,
            (false, false) if r.ids.len() > MAX_LIST as usize => {
                return Err(crate::errors::invalid_argument(format!("at most {MAX_LIST} ids at once")));
            }
            (false, false) => {
                let ids = r
                    .ids
                    .iter()
                    .map(|id| crate::vocab::Id::parse(id, "ids").map(crate::vocab::Id::into_string))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| crate::errors::invalid_argument(e.to_string()))?;
                Some(ids)
            }
            (true, false) => return Err(crate::errors::invalid_argument("give ids or all, not both")),
            (false, true) => {
                return Err(crate::errors::invalid_argument("ids is empty: name the dead letters, or all"));
            }
        };
        let replayed = self.queue.replay(&self.db, ids.as_deref()).await.map_err(|e| crate::db::status(&e))?;
        tracing::info!(queue = self.queue.table, replayed, "dead letters replayed");
        Ok(Response::new(pb::ReplayDeadLettersResponse { replayed }))
    }
}
