//! Running one query with the rights of the owner of an extension table, as a SECURITY
//! DEFINER function would, for Rust functions that read service-only tables (the match-input
//! log, organizations' fee settings) on behalf of any caller.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    /// relation name -> (owner, relation oid), found once per backend.
    static OWNERS: RefCell<HashMap<&'static str, (pg_sys::Oid, pg_sys::Oid)>> = RefCell::new(HashMap::new());
}

/// Owner and oid of `relation` (a schema-qualified name known at compile time).
pub fn owner_of(relation: &'static str) -> Result<(pg_sys::Oid, pg_sys::Oid), pgrx::spi::SpiError> {
    if let Some(v) = OWNERS.with(|o| o.borrow().get(relation).copied()) {
        return Ok(v);
    }
    let (owner, oid) = super::load::select_two::<pg_sys::Oid, pg_sys::Oid>(
        "SELECT c.relowner, c.oid FROM pg_catalog.pg_class c
          WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
        &[relation.into()],
    )?;
    let v = (
        owner.unwrap_or(pg_sys::InvalidOid),
        oid.unwrap_or(pg_sys::InvalidOid),
    );
    OWNERS.with(|o| o.borrow_mut().insert(relation, v));
    Ok(v)
}

/// Runs `f` as the owner of `relation`. The user id is switched back afterwards; if `f`
/// raises, (sub)transaction abort restores the user id saved when it began.
pub fn as_owner_of<R>(
    relation: &'static str,
    f: impl FnOnce() -> R,
) -> Result<R, pgrx::spi::SpiError> {
    let (owner, _) = owner_of(relation)?;
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0i32;
    // SAFETY: plain reads and writes of the backend's current user id.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    let r = f();
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    Ok(r)
}

/// Runs `f` with `search_path` set to `pg_catalog, pg_temp`, as a function's `SET
/// search_path` clause would, for the few functions that do not pin it themselves (to stay
/// cheap per row): a query they run with the owner's rights must not resolve an operator
/// or function through a schema the caller put first. Restored afterwards, and by
/// (sub)transaction abort if `f` raises.
pub fn with_pinned_search_path<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the GUC nesting fmgr uses for SET clauses.
    let nest = unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    let r = f();
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    r
}

/// The role the session is acting as (`SET ROLE`, or the login role): who made a change, for
/// the audit log, even inside a SECURITY DEFINER function or trigger.
#[pg_extern(stable, parallel_safe)]
pub fn caller_role() -> String {
    // SAFETY: a catalog lookup of the outer user id; a dropped role reads as its oid.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), true);
        if name.is_null() {
            format!("role {:?}", pg_sys::GetOuterUserId())
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    }
}

/// Whether the role the session is acting as (`SET ROLE`, or the login role) is, or acts
/// as, `service_role` (or a superuser). Unlike `current_user`, this is not changed by
/// SECURITY DEFINER, so a definer function can tell a service caller from an API user.
#[pg_extern(stable, parallel_safe)]
pub fn caller_is_service_role() -> bool {
    // SAFETY: catalog lookups for the outer user id.
    unsafe {
        let outer = pg_sys::GetOuterUserId();
        if pg_sys::superuser_arg(outer) {
            return true;
        }
        let service = pg_sys::get_role_oid(c"service_role".as_ptr(), true);
        service != pg_sys::InvalidOid && pg_sys::has_privs_of_role(outer, service)
    }
}
