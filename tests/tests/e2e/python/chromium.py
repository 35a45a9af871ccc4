"""Headless Chromium for the portal's browser tests, as a French-speaking clinician's browser.

`with french_chromium() as driver:` gives a Selenium WebDriver on a throw-away profile. The
server's certificate is self-signed: Chromium is told to accept it (these tests check the
portal, not TLS).
"""

import contextlib
import shutil
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


@contextlib.contextmanager
def french_chromium():
    profile = tempfile.mkdtemp(prefix="megalis-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--ignore-certificate-errors", "--lang=fr-FR", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The portal follows Accept-Language.
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
