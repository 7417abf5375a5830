//! DRF-style pagination, the shape edX's list endpoints answer and its clients follow:
//! `count`, `num_pages`, `current_page`, `next`, `previous`, `start`, `results`.

use crate::error::ApiError;
use axum::http::request::Parts;
use axum::http::{header::HOST, Uri};
use serde::{Deserialize, Serialize};

const DEFAULT_PAGE_SIZE: u32 = 10;
const MAX_PAGE_SIZE: u32 = 500;

/// The page a list request asks for (`?page=&page_size=`; pages count from 1).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
pub struct PageRequest {
    pub page: Option<u32>,
    pub page_size: Option<u32>,
}

impl PageRequest {
    /// The page number and size, checked.
    pub fn resolve(self) -> Result<(u32, u32), ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page == 0 {
            return Err(ApiError::field("page", "pages count from 1"));
        }
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(ApiError::field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok((page, size))
    }

    /// The requested page of a list read whole, and the list's length.
    pub fn slice<T>(self, rows: Vec<T>) -> Result<(i64, Vec<T>), ApiError> {
        let (limit, offset) = self.limit_offset()?;
        let count = rows.len() as i64;
        let page = rows
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok((count, page))
    }

    pub fn limit_offset(self) -> Result<(i64, i64), ApiError> {
        let (page, size) = self.resolve()?;
        Ok((i64::from(size), i64::from(page - 1) * i64::from(size)))
    }
}

/// One page of results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub count: i64,
    pub num_pages: i64,
    pub current_page: u32,
    pub next: Option<String>,
    pub previous: Option<String>,
    /// Index of the first result of this page in the whole list.
    pub start: i64,
    pub results: Vec<T>,
}

impl<T> Page<T> {
    /// The page `request` asked for, out of `count` results in all; `parts` gives the URL the
    /// `next` and `previous` links are built on.
    pub fn new(
        parts: &RequestUrl,
        request: PageRequest,
        count: i64,
        results: Vec<T>,
    ) -> Result<Self, ApiError> {
        let (page, size) = request.resolve()?;
        let num_pages = ((count + i64::from(size) - 1) / i64::from(size)).max(1);
        let next = (i64::from(page) < num_pages).then(|| parts.with_page(page + 1));
        let previous = (page > 1).then(|| parts.with_page(page - 1));
        Ok(Self {
            count,
            num_pages,
            current_page: page,
            next,
            previous,
            start: i64::from(page - 1) * i64::from(size),
            results,
        })
    }
}

/// The absolute URL of a request, for page links.
#[derive(Debug, Clone)]
pub struct RequestUrl {
    host: String,
    uri: Uri,
}

impl RequestUrl {
    pub fn of(parts: &Parts) -> Self {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_string();
        Self {
            host,
            uri: parts.uri.clone(),
        }
    }

    fn with_page(&self, page: u32) -> String {
        let mut pairs: Vec<(String, String)> = self
            .uri
            .query()
            .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
            .unwrap_or_default();
        pairs.retain(|(k, _)| k != "page");
        pairs.push(("page".into(), page.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("http://{}{}?{}", self.host, self.uri.path(), query)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// `?page=&page_size=` on their own (the other query parameters are read separately).
pub struct PageParams(pub PageRequest);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PageParams {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
                .map_err(|e| ApiError::field("query", e.to_string()))?;
        let number = |name: &str| -> Result<Option<u32>, ApiError> {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| {
                    v.parse::<u32>()
                        .map_err(|_| ApiError::field(name, "must be a positive integer"))
                })
                .transpose()
        };
        Ok(Self(PageRequest {
            page: number("page")?,
            page_size: number("page_size")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(uri: &str) -> RequestUrl {
        RequestUrl {
            host: "svc".into(),
            uri: uri.parse().unwrap(),
        }
    }

    #[test]
    fn pages_link_to_their_neighbours() {
        let request = PageRequest {
            page: Some(2),
            page_size: Some(10),
        };
        let page = Page::new(&url("/x/?username=a&page=2"), request, 25, vec![1, 2]).unwrap();
        assert_eq!(page.num_pages, 3);
        assert_eq!(page.start, 10);
        assert_eq!(
            page.next.as_deref(),
            Some("http://svc/x/?username=a&page=3")
        );
        assert_eq!(
            page.previous.as_deref(),
            Some("http://svc/x/?username=a&page=1")
        );
    }

    #[test]
    fn an_empty_list_is_one_empty_page() {
        let request = PageRequest {
            page: None,
            page_size: None,
        };
        let page = Page::<u8>::new(&url("/x/"), request, 0, vec![]).unwrap();
        assert_eq!((page.num_pages, page.current_page), (1, 1));
        assert!(page.next.is_none() && page.previous.is_none());
    }

    #[test]
    fn bad_page_requests_are_refused() {
        for (page, size) in [(Some(0), None), (None, Some(0)), (None, Some(10_000))] {
            let request = PageRequest {
                page,
                page_size: size,
            };
            assert!(request.resolve().is_err());
        }
    }
}
