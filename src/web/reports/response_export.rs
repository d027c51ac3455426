//! The response-level export for administrators: every response of a form and period as CSV,
//! streamed page by page so memory stays flat however many rows there are.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use crate::error::AppError;
use crate::report::queries::{self, OpenedExport};

#[derive(Deserialize)]
pub struct ExportQuery {
    form: Option<String>,
    period: Option<String>,
}

pub async fn responses_csv(
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let query = queries::ExportQuery::parse(&state.forms, q.form.as_deref(), q.period.as_deref())?;
    let OpenedExport {
        export,
        form,
        period,
    } = queries::response_export(&state, query).await?;
    let head = export.header();
    let pool = state.reads.clone();
    let pages = futures_util::stream::unfold(Some(export), move |export| {
        let pool = pool.clone();
        async move {
            let mut export = export?;
            let result = web::block(move || {
                let page = pool.get().and_then(|mut conn| export.next_page(&mut conn));
                (export, page)
            })
            .await;
            match result {
                Ok((export, Ok(Some(text)))) => Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from(text)),
                    Some(export),
                )),
                Ok((_, Ok(None))) => None,
                // Ending the body with an error aborts the download, so a failed export can
                // never pass for a complete file.
                Ok((_, Err(e))) => {
                    tracing::error!(error = format!("{e:#}"), "response export failed");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        None,
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "response export failed");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        None,
                    ))
                }
            }
        }
    });
    use futures_util::StreamExt;
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(pages);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sipas-responses-{}-{}.csv\"",
                form.code,
                period.label()
            ),
        ))
        .streaming(body))
}
