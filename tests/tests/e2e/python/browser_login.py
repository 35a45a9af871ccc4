"""Real browser login: headless Chromium, driven over WebDriver (chromedriver) by Selenium.

Usage: browser_login.py BASE_URL USERNAME PASSWORD

Opens the login page, checks its accessibility basics, types the credentials, submits, and
reads the launcher. The server's certificate is self-signed: Chromium is told to accept it
(this test checks the portal, not TLS). Prints a JSON summary; failures raise.
"""

import json
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main():
    base, username, password = sys.argv[1:4]
    profile = tempfile.mkdtemp(prefix="megalis-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--ignore-certificate-errors", "--lang=fr-FR", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # A French-speaking clinician's browser: the portal follows Accept-Language.
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(f"{base}/login")
        out = {"lang": driver.find_element(By.TAG_NAME, "html").get_attribute("lang")}
        # Every visible input has a label pointing at it.
        for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden])"):
            fid = field.get_attribute("id")
            assert driver.find_elements(By.CSS_SELECTOR, f"label[for='{fid}']"), f"no label for {fid}"
        # Only the methods the platform offers are shown (this server has no card listener).
        out["cps_button"] = bool(driver.find_elements(By.ID, "cps-login"))
        # Keyboard users reach the skip link first.
        driver.find_element(By.TAG_NAME, "body").send_keys("\t")
        assert driver.switch_to.active_element.get_attribute("class") == "skip"
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "launcher")))
        out["tiles"] = [a.get_attribute("data-app")
                        for a in driver.find_elements(By.CSS_SELECTOR, "#launcher a.tile")]
        out["title"] = driver.title
        # The script from /static/portal.js loaded under the CSP (no console CSP errors).
        errors = [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not errors, errors
        print(json.dumps(out))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
