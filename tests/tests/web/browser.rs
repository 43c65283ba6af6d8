//! Debian's chromium, headless, inside a lab namespace, driven over the
//! DevTools protocol, with a log of every request its tab makes.

use std::{
    collections::HashSet,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use headless_chrome::{
    Browser, LaunchOptions, Tab,
    protocol::cdp::{Network, Page::CaptureScreenshotFormatOption, types::Event},
};
use lab::{Netns, poll::Every, scratch::Scratch};
use serde::de::DeserializeOwned;

/// The distribution's browser; never one downloaded for the test.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Without these, chromium reaches for update, sync and field-trial
/// servers that the lab namespace cannot reach, and retries for ever.
const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The page refreshes every 2 s; a few refreshes are plenty.
const WAIT: Duration = Duration::from_secs(30);
const STEP: Every = Every(Duration::from_millis(200));

pub fn missing() -> Option<String> {
    (!Path::new(CHROMIUM).exists()).then(|| {
        format!("{CHROMIUM} is not installed: `cargo xtask setup` installs it (apt-get install chromium)")
    })
}

/// A browser with one tab. Its profile is a fresh empty directory.
pub struct Chromium {
    pub tab: Arc<Tab>,
    requests: Arc<Mutex<Vec<String>>>,
    browser: Option<Browser>,
    profile: Scratch,
}

impl Drop for Chromium {
    /// Chromium's helper processes still write to the profile for a moment
    /// after the browser is gone; its contents are removed once they stop,
    /// and the scratch directory then goes as usual.
    fn drop(&mut self) {
        drop(self.browser.take());
        let path = self.profile.path();
        let emptied = Every(Duration::from_millis(100)).until(
            "chromium's profile removable",
            Duration::from_secs(10),
            || {
                Ok(fs::remove_dir_all(path)
                    .and_then(|()| fs::create_dir(path))
                    .is_ok())
            },
            |done| *done,
        );
        if let Err(e) = emptied {
            eprintln!("{e:#}");
        }
    }
}

impl Chromium {
    /// Starts chromium in `ns` (its DevTools socket and every connection
    /// it makes belong there) with a tab whose requests are logged.
    pub fn start(ns: &Netns) -> Result<Self> {
        let profile = Scratch::new("chromium")?;
        let options = LaunchOptions::default_builder()
            .path(Some(PathBuf::from(CHROMIUM)))
            .headless(true)
            .sandbox(false)
            .enable_gpu(false)
            .window_size(Some((1400, 1000)))
            .user_data_dir(Some(profile.path().to_path_buf()))
            // The test pauses the page while it stops the daemon.
            .idle_browser_timeout(Duration::from_secs(600))
            .args(FLAGS.iter().map(OsStr::new).collect())
            .build()
            .map_err(|e| anyhow!("chromium launch options: {e}"))?;
        let browser = ns
            .enter(|| Browser::new(options))?
            .map_err(|e| anyhow!("failed to start {CHROMIUM}: {e:#}"))?;
        let tab = browser.new_tab().map_err(|e| anyhow!("new tab: {e:#}"))?;
        tab.set_default_timeout(WAIT);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tab.add_event_listener(Arc::new(move |event: &Event| {
            if let Event::NetworkRequestWillBeSent(sent) = event {
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sent.params.request.url.clone());
            }
        }))
        .map_err(|e| anyhow!("listening to the tab: {e:#}"))?;
        tab.call_method(Network::Enable {
            max_total_buffer_size: None,
            max_resource_buffer_size: None,
            max_post_data_size: None,
            report_direct_socket_traffic: None,
            enable_durable_messages: None,
        })
        .map_err(|e| anyhow!("Network.enable: {e:#}"))?;
        Ok(Self {
            tab,
            requests,
            browser: Some(browser),
            profile,
        })
    }

    pub fn open(&self, url: &str) -> Result<()> {
        self.tab
            .navigate_to(url)
            .and_then(|t| t.wait_until_navigated())
            .map_err(|e| anyhow!("navigating to {url}: {e:#}"))?;
        Ok(())
    }

    /// The JSON value of a JavaScript expression in the page.
    pub fn eval<T: DeserializeOwned>(&self, expression: &str) -> Result<T> {
        let wrapped = format!("JSON.stringify(({expression}))");
        let value = self
            .tab
            .evaluate(&wrapped, false)
            .map_err(|e| anyhow!("evaluating {expression}: {e:#}"))?
            .value
            .with_context(|| format!("{expression}: no value"))?;
        let text = value
            .as_str()
            .with_context(|| format!("{expression}: not a string: {value}"))?;
        serde_json::from_str(text).with_context(|| format!("{expression}: {text}"))
    }

    /// Reads `expression` until `done` accepts it.
    pub fn wait<T: DeserializeOwned + std::fmt::Debug>(
        &self,
        what: &str,
        expression: &str,
        done: impl Fn(&T) -> bool,
    ) -> Result<T> {
        STEP.until(what, WAIT, || self.eval(expression), done)
    }

    /// Clicks the first element matching `selector`.
    pub fn click(&self, selector: &str) -> Result<()> {
        self.tab
            .find_element(selector)
            .and_then(|e| e.click().map(drop))
            .map_err(|e| anyhow!("clicking {selector}: {e:#}"))
    }

    /// Types `text` into the element matching `selector`, key by key.
    pub fn type_into(&self, selector: &str, text: &str) -> Result<()> {
        self.tab
            .find_element(selector)
            .and_then(|e| e.type_into(text).map(drop))
            .map_err(|e| anyhow!("typing into {selector}: {e:#}"))
    }

    /// A PNG of the viewport written to `path`, and its number of
    /// distinct colours.
    pub fn screenshot(&self, path: &Path) -> Result<usize> {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .map_err(|e| anyhow!("screenshot: {e:#}"))?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(path, &png).with_context(|| format!("failed to write {}", path.display()))?;
        distinct_colours(&png)
    }

    /// Every URL the tab has requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn distinct_colours(png: &[u8]) -> Result<usize> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .context("decoding the screenshot")?;
    let mut pixels = vec![0; reader.output_buffer_size().context("screenshot size")?];
    let info = reader.next_frame(&mut pixels)?;
    let channels = info.color_type.samples();
    let colours: HashSet<&[u8]> = pixels[..info.buffer_size()]
        .chunks_exact(channels)
        .collect();
    Ok(colours.len())
}
