//! A `serde_json::Value` turned into `jsonb` directly, without printing it and parsing the
//! text back (what `pgrx::JsonB` does). A match explanation is built for every scored pair,
//! and the text round trip was a quarter of a cached per-pair call.
//!
//! The result equals `jsonb_in` of serde_json's text: numbers go through `numeric_in` on
//! the same text serde_json prints (integers through `int64_to_numeric`), strings are
//! copied byte for byte, and Postgres sorts and deduplicates object keys as it always does.

use std::ffi::CString;

use pgrx::pg_sys::{self, jbvType, JsonbIteratorToken, JsonbParseState, JsonbValue};
use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::{impl_sql_translatable, IntoDatum};
use serde_json::Value;

/// A JSON value returned or passed to SQL as `jsonb`.
#[derive(Debug, Clone, PartialEq)]
pub struct Jsonb(pub Value);

impl_sql_translatable!(Jsonb, "jsonb");

impl IntoDatum for Jsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(to_jsonb(&self.0))
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl BoxRet for Jsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(to_jsonb(&self.0)) }
    }
}

fn scalar(v: &Value) -> JsonbValue {
    // SAFETY: JsonbValue is plain data; the fields set below are the ones `type_` selects.
    let mut out: JsonbValue = unsafe { std::mem::zeroed() };
    match v {
        Value::Null => out.type_ = jbvType::jbvNull,
        Value::Bool(b) => {
            out.type_ = jbvType::jbvBool;
            out.val.boolean = *b;
        }
        Value::Number(n) => {
            out.type_ = jbvType::jbvNumeric;
            out.val.numeric = match n.as_i64() {
                // SAFETY: returns a palloc'd numeric.
                Some(i) => unsafe { pg_sys::int64_to_numeric(i) },
                None => numeric_from_text(&n.to_string()),
            };
        }
        Value::String(s) => {
            out.type_ = jbvType::jbvString;
            // jsonb keeps the pointer until JsonbValueToJsonb copies the bytes; the string
            // outlives that (it is borrowed from the value being converted).
            out.val.string.len = s.len() as i32;
            out.val.string.val = s.as_ptr() as *mut std::ffi::c_char;
        }
        Value::Array(_) | Value::Object(_) => unreachable!("containers are pushed, not scalars"),
    }
    out
}

fn numeric_from_text(text: &str) -> pg_sys::Numeric {
    let c = CString::new(text).expect("a printed number has no NUL");
    // SAFETY: numeric_in(cstring, typioparam, typmod), called like the SQL cast does.
    unsafe {
        let d = pgrx::fcinfo::direct_function_call_as_datum(
            pg_sys::numeric_in,
            &[
                Some(pg_sys::Datum::from(c.as_ptr())),
                pg_sys::InvalidOid.into_datum(),
                (-1i32).into_datum(),
            ],
        )
        .expect("numeric_in returns a value");
        d.cast_mut_ptr::<pg_sys::NumericData>()
    }
}

/// Pushes `v` into the parse state; returns what the outermost close returned.
///
/// # Safety
/// `state` belongs to one conversion; the strings of `v` outlive it.
unsafe fn push(
    state: &mut *mut JsonbParseState,
    token: JsonbIteratorToken::Type,
    v: &Value,
) -> *mut JsonbValue {
    match v {
        Value::Object(map) => {
            pg_sys::pushJsonbValue(state, JsonbIteratorToken::WJB_BEGIN_OBJECT, std::ptr::null_mut());
            for (k, item) in map {
                let mut key: JsonbValue = std::mem::zeroed();
                key.type_ = jbvType::jbvString;
                key.val.string.len = k.len() as i32;
                key.val.string.val = k.as_ptr() as *mut std::ffi::c_char;
                pg_sys::pushJsonbValue(state, JsonbIteratorToken::WJB_KEY, &mut key);
                push(state, JsonbIteratorToken::WJB_VALUE, item);
            }
            pg_sys::pushJsonbValue(state, JsonbIteratorToken::WJB_END_OBJECT, std::ptr::null_mut())
        }
        Value::Array(items) => {
            pg_sys::pushJsonbValue(state, JsonbIteratorToken::WJB_BEGIN_ARRAY, std::ptr::null_mut());
            for item in items {
                push(state, JsonbIteratorToken::WJB_ELEM, item);
            }
            pg_sys::pushJsonbValue(state, JsonbIteratorToken::WJB_END_ARRAY, std::ptr::null_mut())
        }
        _ => {
            let mut s = scalar(v);
            pg_sys::pushJsonbValue(state, token, &mut s)
        }
    }
}

/// `v` as a `jsonb` datum (palloc'd in the current memory context).
pub fn to_jsonb(v: &Value) -> pg_sys::Datum {
    // SAFETY: one parse state for one conversion; `v` is borrowed throughout.
    unsafe {
        let mut state: *mut JsonbParseState = std::ptr::null_mut();
        let root = match v {
            Value::Object(_) | Value::Array(_) => push(&mut state, JsonbIteratorToken::WJB_ELEM, v),
            _ => {
                // a top-level scalar is stored as a one-element "raw scalar" array
                pg_sys::pushJsonbValue(&mut state, JsonbIteratorToken::WJB_BEGIN_ARRAY, std::ptr::null_mut());
                (*state).contVal.val.array.rawScalar = true;
                push(&mut state, JsonbIteratorToken::WJB_ELEM, v);
                pg_sys::pushJsonbValue(&mut state, JsonbIteratorToken::WJB_END_ARRAY, std::ptr::null_mut())
            }
        };
        pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(root))
    }
}
