//! Privilege checks, `GRANT`/`REVOKE`, users and roles.
//!
//! `root` and members of `admin` may do everything. Others need the
//! privilege on the object, granted to them, to a role they belong to, or to
//! `public`; an object's owner holds every privilege on it.

use super::special::ObjKind;
use super::{Ctx, QueryResult, SqlError};
use crate::catalog::model::{Body, Desc};
use crate::catalog::{USERS_TABLE_ID, UserRecord, descriptor_key, encode_desc, system_key};
use crate::password::{PasswordHash, Secret};
use crate::sql::value::Value;

/// Privileges that may be granted.
const KNOWN: &[&str] = &[
    "ALL",
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "CONNECT",
    "USAGE",
    "ZONECONFIG",
];

/// Whether the session's user is an admin.
pub(crate) fn is_admin(ctx: &Ctx<'_>) -> bool {
    ctx.cat.is_member(ctx.user, "admin")
}

/// Whether the session's user holds `privilege` on `desc`.
pub(crate) fn has(ctx: &Ctx<'_>, desc: &Desc, privilege: &str) -> bool {
    if ctx.skip_privileges || is_admin(ctx) || desc.owner == ctx.user {
        return true;
    }
    ctx.cat.grantees_of(ctx.user).iter().any(|g| {
        desc.privileges
            .get(g)
            .is_some_and(|p| p.contains(privilege) || p.contains("ALL"))
    })
}

/// Fails unless the user holds `privilege` on `desc`.
pub(crate) fn require(
    ctx: &Ctx<'_>,
    desc: &Desc,
    privilege: &str,
    kind: &'static str,
) -> Result<(), SqlError> {
    if has(ctx, desc, privilege) {
        return Ok(());
    }
    Err(SqlError::InsufficientPrivilege {
        user: ctx.user.to_string(),
        privilege: privilege.to_string(),
        kind,
        object: desc.name.clone(),
    })
}

/// Fails unless the user is an admin.
pub(crate) fn require_admin(ctx: &Ctx<'_>, what: &str) -> Result<(), SqlError> {
    if is_admin(ctx) {
        Ok(())
    } else {
        Err(SqlError::NotAdmin(ctx.user.to_string(), what.to_string()))
    }
}

/// The kind word privilege errors use for a descriptor.
pub(crate) fn kind_word(d: &Desc) -> &'static str {
    match d.body {
        Body::Database => "database",
        Body::Schema => "schema",
        Body::Type(_) => "type",
        _ => "relation",
    }
}

/// `CREATE USER|ROLE`.
pub(crate) fn create_user(
    ctx: &mut Ctx<'_>,
    name: &str,
    is_role: bool,
    if_not_exists: bool,
    password: Option<Secret>,
) -> Result<QueryResult, SqlError> {
    require_admin(ctx, "only admins may create users and roles")?;
    if ctx.cat.users.contains_key(name) {
        if if_not_exists {
            return Ok(QueryResult::tag(if is_role {
                "CREATE ROLE"
            } else {
                "CREATE USER"
            }));
        }
        return Err(SqlError::Duplicate {
            kind: "role/user",
            name: name.to_string(),
        });
    }
    put_user(
        ctx,
        name,
        &UserRecord {
            is_role,
            member_of: Vec::new(),
            password: password.map(|p| PasswordHash::new(&p.0)).transpose()?,
        },
    )?;
    Ok(QueryResult::tag(if is_role {
        "CREATE ROLE"
    } else {
        "CREATE USER"
    }))
}

/// `ALTER USER|ROLE name [WITH] PASSWORD 'pw' | NULL`: admins may set any
/// user's password, everyone may set their own.
pub(crate) fn alter_user_password(
    ctx: &mut Ctx<'_>,
    name: &str,
    if_exists: bool,
    password: Option<Secret>,
) -> Result<QueryResult, SqlError> {
    if name != ctx.user {
        require_admin(ctx, "only admins may change another user's password")?;
    }
    let Some(mut rec) = ctx.cat.users.get(name).cloned() else {
        return if if_exists {
            Ok(QueryResult::tag("ALTER ROLE"))
        } else {
            Err(SqlError::UndefinedUser(name.to_string()))
        };
    };
    rec.password = password.map(|p| PasswordHash::new(&p.0)).transpose()?;
    put_user(ctx, name, &rec)?;
    Ok(QueryResult::tag("ALTER ROLE"))
}

/// `DROP USER|ROLE`.
pub(crate) fn drop_user(
    ctx: &mut Ctx<'_>,
    name: &str,
    if_exists: bool,
) -> Result<QueryResult, SqlError> {
    require_admin(ctx, "only admins may drop users and roles")?;
    if matches!(name, "root" | "admin" | "public") {
        return Err(SqlError::Invalid(format!(
            "cannot drop special role {name}"
        )));
    }
    if !ctx.cat.users.contains_key(name) {
        return if if_exists {
            Ok(QueryResult::tag("DROP ROLE"))
        } else {
            Err(SqlError::UndefinedUser(name.to_string()))
        };
    }
    if let Some(d) = ctx
        .cat
        .descs
        .values()
        .find(|d| d.owner == name || d.privileges.contains_key(name))
    {
        return Err(SqlError::Invalid(format!(
            "cannot drop role/user {name}: it has privileges on {} {}; revoke them first",
            kind_word(d),
            d.name
        )));
    }
    ctx.kv
        .delete(system_key(USERS_TABLE_ID, &Value::String(name.to_string())));
    Ok(QueryResult::tag("DROP ROLE"))
}

fn put_user(ctx: &mut Ctx<'_>, name: &str, rec: &UserRecord) -> Result<(), SqlError> {
    let bytes = serde_json::to_vec(rec).map_err(|e| SqlError::Invalid(e.to_string()))?;
    ctx.kv.put(
        system_key(USERS_TABLE_ID, &Value::String(name.to_string())),
        bytes,
    );
    ctx.cat.users.insert(name.to_string(), rec.clone());
    Ok(())
}

/// `GRANT role TO user` / `REVOKE role FROM user`.
pub(crate) fn grant_role(
    ctx: &mut Ctx<'_>,
    revoke: bool,
    roles: &[String],
    members: &[String],
) -> Result<QueryResult, SqlError> {
    require_admin(ctx, "only admins may change role membership")?;
    for role in roles {
        match ctx.cat.users.get(role) {
            Some(r) if r.is_role => {}
            Some(_) => return Err(SqlError::Invalid(format!("{role} is a user, not a role"))),
            None => return Err(SqlError::UndefinedUser(role.clone())),
        }
        for m in members {
            let mut rec = ctx
                .cat
                .users
                .get(m)
                .cloned()
                .ok_or_else(|| SqlError::UndefinedUser(m.clone()))?;
            rec.member_of.retain(|r| r != role);
            if !revoke {
                if ctx.cat.is_member(role, m) {
                    return Err(SqlError::Invalid(format!(
                        "making {m} a member of {role} would create a cycle"
                    )));
                }
                rec.member_of.push(role.clone());
            }
            if m == "root" {
                return Err(SqlError::Invalid("cannot change the roles of root".into()));
            }
            put_user(ctx, m, &rec)?;
        }
    }
    Ok(QueryResult::tag(if revoke { "REVOKE" } else { "GRANT" }))
}

/// `GRANT privileges ON objects TO grantees` (or `REVOKE .. FROM ..`).
pub(crate) fn grant(
    ctx: &mut Ctx<'_>,
    revoke: bool,
    privileges: &[String],
    kind: ObjKind,
    objects: &[Vec<String>],
    grantees: &[String],
) -> Result<QueryResult, SqlError> {
    let privileges: Vec<String> = privileges
        .iter()
        .map(|p| {
            if p == "ALL" || p == "PRIVILEGES" {
                "ALL".to_string()
            } else {
                p.clone()
            }
        })
        .collect();
    if let Some(bad) = privileges.iter().find(|p| !KNOWN.contains(&p.as_str())) {
        return Err(SqlError::Invalid(format!("invalid privilege type {bad}")));
    }
    for g in grantees {
        if !ctx.cat.users.contains_key(g) {
            return Err(SqlError::UndefinedUser(g.clone()));
        }
    }
    for parts in objects {
        let mut d = resolve_kind(ctx, kind, parts)?.clone();
        if !is_admin(ctx) && d.owner != ctx.user {
            return Err(SqlError::InsufficientPrivilege {
                user: ctx.user.to_string(),
                privilege: "GRANT".into(),
                kind: kind_word(&d),
                object: d.name.clone(),
            });
        }
        for g in grantees {
            let set = d.privileges.entry(g.clone()).or_default();
            for p in &privileges {
                if revoke {
                    if p == "ALL" {
                        set.clear();
                    } else {
                        set.remove(p);
                    }
                } else {
                    set.insert(p.clone());
                }
            }
            if set.is_empty() {
                d.privileges.remove(g);
            }
        }
        ctx.kv.put(descriptor_key(d.id), encode_desc(&d));
        ctx.cat.descs.insert(d.id, d);
    }
    Ok(QueryResult::tag(if revoke { "REVOKE" } else { "GRANT" }))
}

/// Resolves a name of the given kind.
pub(crate) fn resolve_kind<'c>(
    ctx: &'c Ctx<'_>,
    kind: ObjKind,
    parts: &[String],
) -> Result<&'c Desc, SqlError> {
    let full = parts.join(".");
    match kind {
        ObjKind::Database => ctx
            .cat
            .database(&full)
            .ok_or(SqlError::UndefinedDatabase(full)),
        ObjKind::Schema => {
            let (db, schema) = match parts {
                [s] => (ctx.database.to_string(), s.clone()),
                [d, s] => (d.clone(), s.clone()),
                _ => return Err(SqlError::UndefinedSchema(full)),
            };
            let db = ctx
                .cat
                .database(&db)
                .ok_or(SqlError::UndefinedDatabase(db))?;
            ctx.cat
                .schema(db.id, &schema)
                .ok_or(SqlError::UndefinedSchema(full))
        }
        ObjKind::Type => {
            let d = ctx
                .cat
                .resolve(parts, ctx.database)
                .map_err(|_| SqlError::UndefinedType(full.clone()))?;
            if matches!(d.body, Body::Type(_)) {
                Ok(d)
            } else {
                Err(SqlError::UndefinedType(full))
            }
        }
        ObjKind::Table => {
            let d = ctx.cat.resolve(parts, ctx.database)?;
            if matches!(d.body, Body::Type(_)) {
                Err(SqlError::UndefinedRelation(full))
            } else {
                Ok(d)
            }
        }
    }
}
