"""Headless Chromium for the portal's browser tests, as a French-speaking clinician's browser.

`with french_chromium() as driver:` gives a Selenium WebDriver on a throw-away profile. The
server's certificate is self-signed: Chromium is told to accept it (these tests check the
portal, not TLS).
"""

import base64
import contextlib
import hashlib
import hmac
import shutil
import struct
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


def totp(secret_b32, at):
    """RFC 6238 code (SHA-1, 30-second steps, 6 digits), as an authenticator app computes it."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def submit_login(driver, base, username, password, code=None):
    """Fills and submits the portal's login form (the caller waits for what should follow)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    if code is not None:
        driver.find_element(By.ID, "otp").send_keys(code)
    driver.find_element(By.ID, "login-submit").click()
