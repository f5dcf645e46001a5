//! pgvector's `vector` as a Rust value that `#[pg_extern]` functions take and return.
//!
//! The byte layout is read and written by `vector_math` (pure); this file only deals with
//! Postgres: detoasting (compressed, external and 1-byte-header values all arrive here),
//! palloc'ing results, and making sure a value really is pgvector's `vector` by finding
//! that type through the `vector` extension's own dependency records rather than by name,
//! so it works wherever pgvector is installed (Supabase keeps it in `extensions`).

use std::cell::Cell;

use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{impl_sql_translatable, FromDatum, IntoDatum, PgSqlErrorCode};

use crate::error::raise;
use crate::vector_math::{self, VectorError};

/// An owned copy of a pgvector `vector` value.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(pub Vec<f32>);

impl Vector {
    pub fn dims(&self) -> usize {
        self.0.len()
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

thread_local! {
    static VECTOR_TYPE_OID: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

const VECTOR_TYPE_LOOKUP: &str = "\
SELECT t.oid
  FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_depend d
    ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
   AND d.objid = t.oid AND d.deptype = 'e'
  JOIN pg_catalog.pg_extension e
    ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = e.oid
 WHERE e.extname = 'vector' AND t.typname = 'vector'";

fn lookup_vector_type_oid() -> pg_sys::Oid {
    // A read-only SPI connection: `Spi::get_one` would assign a transaction id, which a
    // parallel worker (running a PARALLEL SAFE caller of ours) must not do.
    let found = Spi::connect(|client| {
        client
            .select(VECTOR_TYPE_LOOKUP, Some(1), &[])?
            .first()
            .get_one::<pg_sys::Oid>()
    });
    match found {
        Ok(Some(oid)) => oid,
        _ => raise_plain(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "pgvector's type \"vector\" was not found: is the extension \"vector\" installed?",
        ),
    }
}

/// The OID of pgvector's `vector` type in this database, looked up once per backend.
pub fn vector_type_oid() -> pg_sys::Oid {
    let cached = VECTOR_TYPE_OID.with(Cell::get);
    if cached != pg_sys::InvalidOid {
        return cached;
    }
    let oid = lookup_vector_type_oid();
    VECTOR_TYPE_OID.with(|c| c.set(oid));
    oid
}

/// True when `typoid` is pgvector's `vector`. A stale cache (pgvector re-created in this
/// session) is refreshed once before saying no.
fn is_vector_type(typoid: pg_sys::Oid) -> bool {
    if typoid == vector_type_oid() {
        return true;
    }
    VECTOR_TYPE_OID.with(|c| c.set(pg_sys::InvalidOid));
    typoid == vector_type_oid()
}

fn raise_plain(code: PgSqlErrorCode, message: &str) -> ! {
    raise(
        &crate::error::Plain(code, message.to_string()),
        "sponsorship.vector",
    )
}

/// Decodes a (possibly toasted, compressed or short-header) `vector` datum.
///
/// # Safety
/// `datum` must be a non-null varlena datum.
pub unsafe fn decode_datum(datum: pg_sys::Datum) -> Result<Vec<f32>, VectorError> {
    unsafe {
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        // Always returns a plain 4-byte-header, uncompressed, in-line copy (or `raw` itself
        // when it already is one).
        let detoasted = pg_sys::pg_detoast_datum(raw);
        let size = pgrx::varlena::varsize_any_exhdr(detoasted);
        let data = pgrx::varlena::vardata_any(detoasted) as *const u8;
        let payload = std::slice::from_raw_parts(data, size);
        let decoded = vector_math::decode_payload(payload);
        if detoasted != raw {
            pg_sys::pfree(detoasted.cast());
        }
        decoded
    }
}

impl FromDatum for Vector {
    const GET_TYPOID: bool = true;

    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // InvalidOid means the caller could not tell us the type (direct calls): the
        // layout checks below still apply.
        if typoid != pg_sys::InvalidOid && !is_vector_type(typoid) {
            let name = unsafe { type_name(typoid) };
            raise_plain(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                &format!("expected pgvector's type \"vector\", got type \"{name}\""),
            );
        }
        match unsafe { decode_datum(datum) } {
            Ok(values) => Some(Vector(values)),
            Err(e) => raise(&e, "sponsorship.vector"),
        }
    }
}

unsafe fn type_name(typoid: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::format_type_be(typoid);
        let s = std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned();
        pg_sys::pfree(name.cast());
        s
    }
}

impl IntoDatum for Vector {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        if let Err(e) = vector_math::validate(&self.0) {
            raise(&e, "sponsorship.vector");
        }
        let payload_len = vector_math::payload_len(self.0.len());
        let total = pg_sys::VARHDRSZ + payload_len;
        unsafe {
            let ptr = pg_sys::palloc0(total) as *mut pg_sys::varlena;
            pgrx::varlena::set_varsize_4b(ptr, total as i32);
            let data = (ptr as *mut u8).add(pg_sys::VARHDRSZ);
            let out = std::slice::from_raw_parts_mut(data, payload_len);
            if let Err(e) = vector_math::encode_payload_into(&self.0, out) {
                raise(&e, "sponsorship.vector");
            }
            Some(pg_sys::Datum::from(ptr))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        vector_type_oid()
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for Vector {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

unsafe impl BoxRet for Vector {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

impl_sql_translatable!(Vector, "vector");
