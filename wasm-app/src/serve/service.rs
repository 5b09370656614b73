//! The Flight service: the arrow-udf-flight protocol over [`Function`]s.
//!
//! - `DoAction("protocol_version")` answers one result whose body is `[2]`;
//! - `ListFlights` lists every function, `GetFlightInfo(path = [name])`
//!   describes one: its schema is the argument columns then the result
//!   columns, `total_records` the number of arguments;
//! - `DoExchange` with descriptor `path = [name]` runs the function over
//!   every batch the client sends (`exchange.rs`).
//!
//! At most `max_concurrent` exchanges run at once; one more waits up to
//! `queue_wait` for a slot, then is refused with `RESOURCE_EXHAUSTED`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use super::exchange;
use super::functions::Function;

/// The protocol version of arrow-udf-flight this server speaks.
pub(crate) const PROTOCOL_VERSION: u8 = 2;
/// The action that asks for it.
pub(crate) const PROTOCOL_VERSION_ACTION: &str = "protocol_version";
/// Result batches an exchange may make ahead of its client.
const OUTPUT_QUEUE: usize = 4;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub(crate) struct Service {
    functions: Vec<Arc<Function>>,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    queue_wait: Duration,
    idle: Duration,
}

impl Service {
    pub(crate) fn new(
        functions: Vec<Function>,
        max_concurrent: usize,
        queue_wait: Duration,
        idle: Duration,
    ) -> Self {
        Service {
            functions: functions.into_iter().map(Arc::new).collect(),
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            queue_wait,
            idle,
        }
    }

    /// The function a descriptor names: `PATH` type, one element.
    fn function(&self, descriptor: Option<&FlightDescriptor>) -> Result<Arc<Function>, Status> {
        let d = descriptor.ok_or_else(|| Status::invalid_argument("no flight descriptor"))?;
        let [name] = d.path.as_slice() else {
            return Err(Status::invalid_argument(
                "the descriptor's path must be one element: the function's name",
            ));
        };
        self.functions
            .iter()
            .find(|f| &f.name == name)
            .cloned()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no function '{}'",
                    crate::text::guest_text(&name.as_bytes()[..name.len().min(256)])
                ))
            })
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        match tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Status::unavailable("the server is shutting down")),
            Err(_) => Err(Status::resource_exhausted(format!(
                "all {} exchange slots are busy (waited {:?})",
                self.max_concurrent, self.queue_wait
            ))),
        }
    }
}

/// `f` described for a client: arguments then results.
fn info(f: &Function) -> Result<FlightInfo, Status> {
    let fields: Vec<_> = f
        .args
        .fields()
        .iter()
        .chain(f.returns.fields())
        .cloned()
        .collect();
    Ok(FlightInfo::new()
        .try_with_schema(&Schema::new(fields))
        .map_err(|e| Status::internal(e.to_string()))?
        .with_descriptor(FlightDescriptor::new_path(vec![f.name.clone()]))
        .with_total_records(f.args.fields().len() as i64)
        .with_total_bytes(0))
}

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not part of this server's protocol (arrow-udf-flight)"
    )))
}

#[tonic::async_trait]
impl FlightService for Service {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn list_flights(
        &self,
        _: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let infos: Vec<_> = self.functions.iter().map(|f| info(f)).collect();
        Ok(Response::new(futures::stream::iter(infos).boxed()))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let f = self.function(Some(request.get_ref()))?;
        Ok(Response::new(info(&f)?))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let f = self.function(Some(request.get_ref()))?;
        let schema = info(&f)?.schema;
        Ok(Response::new(SchemaResult { schema }))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        if request.get_ref().r#type != PROTOCOL_VERSION_ACTION {
            return unimplemented("that action");
        }
        let answer = arrow_flight::Result::new(vec![PROTOCOL_VERSION]);
        Ok(Response::new(futures::stream::iter([Ok(answer)]).boxed()))
    }

    async fn list_actions(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let action = ActionType {
            r#type: PROTOCOL_VERSION_ACTION.into(),
            description: "the arrow-udf-flight protocol version (one byte)".into(),
        };
        Ok(Response::new(futures::stream::iter([Ok(action)]).boxed()))
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        let mut input = request.into_inner();
        let first = tokio::time::timeout(self.idle, input.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no descriptor came"))??
            .ok_or_else(|| Status::invalid_argument("an empty exchange: no descriptor"))?;
        let function = self.function(first.flight_descriptor.as_ref())?;
        // A slot only for a call that names a function.
        let permit = self.slot().await?;
        let (tx, mut rx) = mpsc::channel(OUTPUT_QUEUE);
        let returns = function.returns.clone();
        let idle = self.idle;
        tokio::spawn(async move {
            exchange::run(function, first, input, idle, tx).await;
            drop(permit);
        });
        let batches = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let out = FlightDataEncoderBuilder::new()
            .with_schema(returns)
            .build(batches)
            .map(|r| r.map_err(Status::from));
        Ok(Response::new(out.boxed()))
    }

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented("Handshake (send the token in an authorization header)")
    }

    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unimplemented("PollFlightInfo")
    }

    async fn do_get(&self, _: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        unimplemented("DoGet")
    }

    async fn do_put(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unimplemented("DoPut")
    }
}
