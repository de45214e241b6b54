//! The full descriptor, as the catalog stores it (the `payload` of a
//! [`backup_format::Descriptor`]): JSON with a format version, so fields can
//! be added without breaking old payloads.

use std::collections::{BTreeMap, BTreeSet};

use backup_format::{Dependency, DependencyKind, DescriptorKind};
use serde::{Deserialize, Serialize};

use crate::sql::value::ColumnType;

/// Format version of [`Desc`] payloads.
pub const DESC_VERSION: u32 = 1;

/// One schema object with everything the SQL layer needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Desc {
    /// Payload format version ([`DESC_VERSION`]).
    pub version: u32,
    /// Cluster-unique id (for tables and sequences also the key prefix).
    pub id: u64,
    /// Unqualified name.
    pub name: String,
    /// Database id (0 for a database).
    pub parent_id: u64,
    /// Schema id (0 for databases and schemas).
    pub parent_schema_id: u64,
    /// The creating user; owners hold every privilege.
    pub owner: String,
    /// Privileges granted per user or role (`SELECT`, `INSERT`, ..., `ALL`).
    pub privileges: BTreeMap<String, BTreeSet<String>>,
    /// What kind of object, with its kind's details.
    pub body: Body,
}

/// The kind-specific part of a descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A database.
    Database,
    /// A schema.
    Schema,
    /// A table.
    Table(TableDesc),
    /// A view.
    View(ViewDesc),
    /// A sequence; its current value is the row at its own key span.
    Sequence(SequenceDesc),
    /// An enum type.
    Type(TypeDesc),
}

/// Columns, indexes and constraints of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDesc {
    /// Columns in order.
    pub columns: Vec<ColumnDesc>,
    /// Column positions of the primary key.
    pub primary_key: Vec<usize>,
    /// Indexes: the primary index (id 1) first, then secondary ones.
    pub indexes: Vec<IndexDesc>,
    /// Foreign keys this table holds.
    pub foreign_keys: Vec<ForeignKeyDesc>,
    /// `exclude_data_from_backup` storage parameter.
    pub exclude_data_from_backup: bool,
    /// The next index id to hand out.
    pub next_index_id: u32,
}

/// One column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnDesc {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default value.
    pub default: Option<DefaultExpr>,
    /// Left out of `*` and of `INSERT` without a column list (`rowid`).
    #[serde(default)]
    pub hidden: bool,
}

/// A column default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DefaultExpr {
    /// `nextval` of the sequence with this id.
    Nextval(u64),
    /// Any other expression, as SQL text.
    Expr(String),
}

/// An index: the primary (id 1) holds the rows; secondary indexes hold keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexDesc {
    /// Index id inside the table (the u32 of the key).
    pub id: u32,
    /// Name (`<table>_pkey` for the primary).
    pub name: String,
    /// Column positions.
    pub columns: Vec<usize>,
    /// Whether the indexed columns are unique.
    pub unique: bool,
}

/// A foreign key: `columns` reference the primary key of `ref_table`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyDesc {
    /// Constraint name.
    pub name: String,
    /// Referencing column positions.
    pub columns: Vec<usize>,
    /// The referenced table's id.
    pub ref_table: u64,
}

/// A view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewDesc {
    /// The `SELECT` text; unqualified names resolve in the view's database.
    pub query: String,
    /// Objects the view reads.
    pub sources: Vec<u64>,
}

/// A sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceDesc {
    /// First value.
    pub start: i64,
    /// Step.
    pub increment: i64,
}

/// An enum type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeDesc {
    /// Its values in order.
    pub values: Vec<String>,
}

impl Desc {
    /// A new descriptor with no grants.
    pub fn new(
        id: u64,
        name: &str,
        parent_id: u64,
        parent_schema_id: u64,
        owner: &str,
        body: Body,
    ) -> Desc {
        Desc {
            version: DESC_VERSION,
            id,
            name: name.to_string(),
            parent_id,
            parent_schema_id,
            owner: owner.to_string(),
            privileges: BTreeMap::new(),
            body,
        }
    }

    /// The kind as the backup system names it.
    pub fn kind(&self) -> DescriptorKind {
        match self.body {
            Body::Database => DescriptorKind::Database,
            Body::Schema => DescriptorKind::Schema,
            Body::Table(_) => DescriptorKind::Table,
            Body::View(_) => DescriptorKind::View,
            Body::Sequence(_) => DescriptorKind::Sequence,
            Body::Type(_) => DescriptorKind::Type,
        }
    }

    /// The table details, if a table.
    pub fn table(&self) -> Option<&TableDesc> {
        match &self.body {
            Body::Table(t) => Some(t),
            _ => None,
        }
    }

    /// Objects this one needs (FK targets, sequences, view sources, types).
    pub fn dependencies(&self) -> Vec<Dependency> {
        let mut out = BTreeSet::new();
        match &self.body {
            Body::Table(t) => {
                for fk in &t.foreign_keys {
                    out.insert(Dependency {
                        id: fk.ref_table,
                        kind: DependencyKind::ForeignKey,
                    });
                }
                for c in &t.columns {
                    if let Some(DefaultExpr::Nextval(seq)) = c.default {
                        out.insert(Dependency {
                            id: seq,
                            kind: DependencyKind::Sequence,
                        });
                    }
                    if let ColumnType::Enum(ty) = c.ty {
                        out.insert(Dependency {
                            id: ty,
                            kind: DependencyKind::Type,
                        });
                    }
                }
            }
            Body::View(v) => {
                for s in &v.sources {
                    out.insert(Dependency {
                        id: *s,
                        kind: DependencyKind::ViewSource,
                    });
                }
            }
            _ => {}
        }
        out.into_iter().collect()
    }

    /// Rewrites every id this descriptor refers to through `map`; references
    /// to ids `keep` does not contain and `map` does not move are dropped
    /// (a foreign key to a table that was not restored).
    pub fn remap(&mut self, map: &BTreeMap<u64, u64>, keep: &dyn Fn(u64) -> bool) {
        let moved = |id: u64| map.get(&id).copied().or_else(|| keep(id).then_some(id));
        match &mut self.body {
            Body::Table(t) => {
                t.foreign_keys.retain_mut(|fk| match moved(fk.ref_table) {
                    Some(id) => {
                        fk.ref_table = id;
                        true
                    }
                    None => false,
                });
                for c in &mut t.columns {
                    if let Some(DefaultExpr::Nextval(seq)) = &mut c.default {
                        match moved(*seq) {
                            Some(id) => *seq = id,
                            None => c.default = None,
                        }
                    }
                    if let ColumnType::Enum(ty) = &mut c.ty {
                        *ty = moved(*ty).unwrap_or(*ty);
                    }
                }
            }
            Body::View(v) => {
                for s in &mut v.sources {
                    *s = moved(*s).unwrap_or(*s);
                }
            }
            _ => {}
        }
    }
}
