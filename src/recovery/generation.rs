//! The views' generation (`view_generation`): bumped by every change to the views that moves
//! no offset (a replayed dead letter, a rebuild's swap), in that change's transaction. The
//! API's data version adds it to the offsets' sum, so its response cache drops what it cached
//! before (`api::data_version`).

use sqlx::PgConnection;

pub async fn bump(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE public.view_generation SET generation = generation + 1").execute(conn).await?;
    Ok(())
}
