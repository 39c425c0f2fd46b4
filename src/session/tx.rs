//! `storage.transactionSync`: several SQL statements committed together or not at all.
//! workers-rs 0.8.7 does not bind it, so it is called through `js_sys`.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Runs `f` inside a synchronous storage transaction. If `f` returns `Err`, everything it wrote is
/// rolled back and the error is returned.
pub fn transaction_sync<T: 'static>(
    storage: &JsValue,
    f: impl FnOnce() -> Result<T, String> + 'static,
) -> Result<T, String> {
    let out: Rc<RefCell<Option<Result<T, String>>>> = Rc::new(RefCell::new(None));
    let slot = out.clone();
    let callback = Closure::once(move || -> Result<JsValue, JsValue> {
        let result = f();
        let failed = result.is_err();
        *slot.borrow_mut() = Some(result);
        // Throwing makes the runtime roll the transaction back.
        if failed { Err(JsValue::from_str("moltlog: rolled back")) } else { Ok(JsValue::UNDEFINED) }
    });
    let raw = storage;
    let call = js_sys::Reflect::get(raw, &JsValue::from_str("transactionSync"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or_else(|| {
            "storage.transactionSync is not available (needs a SQLite-backed Durable Object)".to_owned()
        })?
        .call1(raw, callback.as_ref().unchecked_ref());
    match (out.borrow_mut().take(), call) {
        (Some(Ok(v)), Ok(_)) => Ok(v),
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(_)), Err(e)) | (None, Err(e)) => Err(format!("transaction failed: {e:?}")),
        (None, Ok(_)) => Err("transaction callback did not run".to_owned()),
    }
}
