//! The HTTP rate source: GET the rates URL and parse the Emcont/FXCM body.
//!
//! One `reqwest` client for the life of the process (keep-alive to the upstream),
//! a total timeout below the one-second tick, a cap on the body size, a small
//! redirect limit, certificate verification always on and an honest `User-Agent`.

use std::time::Duration;

use url::Url;

use crate::{
    emcont::parse_body,
    source::{FetchError, Quotes, RateSource},
};

/// Validates a rates URL from the command line: http(s) with a host.
pub fn parse_rates_url(value: &str) -> Result<Url, String> {
    if value.trim().is_empty() {
        return Err("it is empty; unset it to serve simulated rates".into());
    }
    let url = Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        "http" | "https" => Err("the URL has no host".into()),
        other => Err(format!("scheme {other:?} is not http or https")),
    }
}

/// Knobs of the HTTP source; the defaults suit a once-a-second poll.
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    /// Whole-request deadline (connect, headers and body). Below the tick so a
    /// hanging upstream costs one second at most and requests never pile up.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Bodies larger than this are refused: real bodies are a few KiB.
    pub max_body_bytes: usize,
    pub max_redirects: usize,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(800),
            connect_timeout: Duration::from_millis(500),
            max_body_bytes: 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// Fetches quotes from an Emcont/FXCM-format URL.
pub struct HttpSource {
    client: reqwest::Client,
    url: Url,
    config: HttpSourceConfig,
}

impl HttpSource {
    pub fn new(url: Url, config: HttpSourceConfig) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("ratecast/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(config.max_redirects))
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| FetchError::Request(Box::new(e)))?;
        Ok(Self {
            client,
            url,
            config,
        })
    }

    fn classify(&self, error: reqwest::Error) -> FetchError {
        if error.is_timeout() {
            FetchError::Timeout(self.config.timeout)
        } else if error.is_connect() {
            FetchError::Connect(Box::new(error))
        } else if error.is_body() || error.is_decode() {
            FetchError::Body(Box::new(error))
        } else {
            FetchError::Request(Box::new(error))
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let limit = self.config.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl RateSource for HttpSource {
    async fn fetch(&self) -> Result<Quotes, FetchError> {
        let response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let body = self.read_body(response).await?;
        Ok(parse_body(&body)?)
    }

    fn describe(&self) -> String {
        format!("upstream {}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_urls_must_be_http_with_a_host() {
        assert!(parse_rates_url("https://rates.example.com/DataDisplayer").is_ok());
        assert!(parse_rates_url("ftp://x/y").is_err());
        assert!(parse_rates_url("not a url").is_err());
        assert!(parse_rates_url("").is_err());
    }
}
