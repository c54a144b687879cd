//! The browser backend: `fetch` with the body read as a stream (the join's server-sent events
//! arrive as the matchmaker writes them), on the page's event loop.
//!
//! Timeouts are the native backend's, built from `setTimeout` and one `AbortController` per
//! call: until the response head arrives, `connect_timeout` (a browser has no separate
//! connect step to time); then `idle_timeout` between chunks; `total_timeout` throughout. A
//! call the plugin lost interest in (its sink closed) is aborted, so the matchmaker sees the
//! stream close at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, Request, RequestInit, Response, Window};

use super::{HttpEvent, HttpRequest, HttpSink, MatchmakerHttp};

/// `fetch` on the page's event loop; the default on wasm32.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebHttp;

impl MatchmakerHttp for WebHttp {
    fn post(&self, request: HttpRequest, sink: HttpSink) {
        spawn_local(async move {
            let call = Call::new();
            let outcome = match &call {
                Ok(call) => call.run(request, &sink).await,
                Err(e) => Err(e.clone()),
            };
            if let Err(e) = outcome {
                sink.send(HttpEvent::Failed(e));
            }
        });
    }
}

/// One call's abort handle and timers; dropping it clears the timers.
struct Call {
    window: Window,
    controller: AbortController,
    /// Why the call was aborted, when a timer did it.
    timed_out: Rc<Cell<Option<&'static str>>>,
    total: RefCell<Option<Timer>>,
    phase: RefCell<Option<Timer>>,
}

/// A pending `setTimeout` and the closure it calls (kept alive until the timer is cleared).
struct Timer {
    handle: i32,
    _callback: Closure<dyn FnMut()>,
}

impl Call {
    fn new() -> Result<Self, String> {
        let window = web_sys::window().ok_or("no window: the browser backend runs on a page")?;
        let controller = AbortController::new().map_err(describe)?;
        Ok(Self {
            window,
            controller,
            timed_out: Rc::new(Cell::new(None)),
            total: RefCell::new(None),
            phase: RefCell::new(None),
        })
    }

    /// Aborts the call after `after`, saying `why`, replacing the timer in `slot`.
    fn arm(&self, slot: &RefCell<Option<Timer>>, after: Duration, why: &'static str) {
        self.clear(slot);
        let (controller, timed_out) = (self.controller.clone(), self.timed_out.clone());
        let callback = Closure::<dyn FnMut()>::new(move || {
            timed_out.set(Some(why));
            controller.abort();
        });
        let millis = i32::try_from(after.as_millis()).unwrap_or(i32::MAX);
        if let Ok(handle) =
            self.window.set_timeout_with_callback_and_timeout_and_arguments_0(callback.as_ref().unchecked_ref(), millis)
        {
            *slot.borrow_mut() = Some(Timer { handle, _callback: callback });
        }
    }

    /// Clears the timer in `slot`, if any (its closure goes with it).
    fn clear(&self, slot: &RefCell<Option<Timer>>) {
        if let Some(timer) = slot.borrow_mut().take() {
            self.window.clear_timeout_with_handle(timer.handle);
        }
    }

    /// What went wrong: the timer's reason if one fired, else the browser's error.
    fn failure(&self, error: JsValue) -> String {
        match self.timed_out.get() {
            Some(why) => why.to_string(),
            None => describe(error),
        }
    }

    async fn run(&self, request: HttpRequest, sink: &HttpSink) -> Result<(), String> {
        self.arm(&self.total, request.total_timeout, "the call to the matchmaker took too long");
        self.arm(&self.phase, request.connect_timeout, "the matchmaker did not answer in time");
        let headers = Headers::new().map_err(describe)?;
        headers.set("content-type", "application/json").map_err(describe)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&request.body));
        init.set_headers(&headers);
        init.set_signal(Some(&self.controller.signal()));
        let fetch = Request::new_with_str_and_init(&request.url, &init).map_err(describe)?;
        let response: Response = JsFuture::from(self.window.fetch_with_request(&fetch))
            .await
            .map_err(|e| self.failure(e))?
            .dyn_into()
            .map_err(describe)?;
        let content_type = response.headers().get("content-type").ok().flatten().unwrap_or_default();
        let head =
            HttpEvent::Head { status: response.status(), event_stream: content_type.starts_with("text/event-stream") };
        if !sink.send(head) {
            self.controller.abort();
            return Ok(());
        }
        let Some(body) = response.body() else {
            sink.send(HttpEvent::End);
            return Ok(());
        };
        let reader: ReadableStreamDefaultReader =
            body.get_reader().dyn_into().map_err(|object: js_sys::Object| describe(object.into()))?;
        loop {
            self.arm(&self.phase, request.idle_timeout, "the matchmaker went silent");
            let chunk = JsFuture::from(reader.read()).await.map_err(|e| self.failure(e))?;
            if Reflect::get(&chunk, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                sink.send(HttpEvent::End);
                return Ok(());
            }
            let value = Reflect::get(&chunk, &JsValue::from_str("value")).map_err(describe)?;
            if !sink.send(HttpEvent::Body(Uint8Array::new(&value).to_vec())) {
                // Nobody listens any more: close the stream rather than read it to its end.
                self.controller.abort();
                return Ok(());
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.clear(&self.total);
        self.clear(&self.phase);
    }
}

/// A readable message from a JavaScript error (a `TypeError: Failed to fetch` says little, but
/// it is what the browser gives: CORS refusals and unreachable hosts look the same to a page).
fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}
