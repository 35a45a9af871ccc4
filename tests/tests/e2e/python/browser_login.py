"""Real browser login: headless Chromium, driven over WebDriver (chromedriver) by Selenium.

Usage: browser_login.py BASE_URL USERNAME PASSWORD

Opens the login page, checks its accessibility basics, types the credentials, submits, and
reads the launcher; then enrols a TOTP second factor on the profile page (reading the secret the
page shows, computing codes as an authenticator app would), signs out, and signs in again with
password and code. The server's certificate is self-signed: Chromium is told to accept it
(this test checks the portal, not TLS). Prints a JSON summary; failures raise.
"""

import json
import sys
import time

from chromium import french_chromium, submit_login, totp
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def sign_in(driver, base, username, password, code=None):
    submit_login(driver, base, username, password, code)
    WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "launcher")))


def main():
    base, username, password = sys.argv[1:4]
    with french_chromium() as driver:
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

        # Second factor: enrol on the profile page.
        driver.get(f"{base}/profile")
        driver.find_element(By.ID, "totp-start").click()
        secret = WebDriverWait(driver, 20).until(
            EC.presence_of_element_located((By.ID, "totp-secret"))).text.strip()
        assert driver.find_elements(By.CSS_SELECTOR, "label[for='totp-code']")
        # The current step's code. The server accepts one step of skew either way, so this stays
        # valid if a step boundary passes before it arrives (the previous step's code did not:
        # under load it could arrive two steps late and fail).
        enrolled_at = time.time()
        driver.find_element(By.ID, "totp-code").send_keys(totp(secret, enrolled_at))
        driver.find_element(By.CSS_SELECTOR, "form[action='/profile/totp/confirm'] button").click()
        codes = WebDriverWait(driver, 20).until(
            EC.presence_of_element_located((By.ID, "recovery-codes")))
        out["recovery_codes"] = len(codes.find_elements(By.TAG_NAME, "li"))
        # Sign out, then in again: now the code is required.
        driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "login-submit")))
        driver.get(f"{base}/profile")
        out["profile_after_logout"] = "/login" in driver.current_url
        driver.get(f"{base}/login")
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        out["refused_without_code"] = bool(
            WebDriverWait(driver, 20).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))).text)
        # Each step is accepted once: the sign-in uses the next step after the enrolment's,
        # valid while the server is at most one step past it (the sign-in comes seconds later).
        sign_in(driver, base, username, password, totp(secret, enrolled_at + 30))
        out["tiles_after_totp"] = [a.get_attribute("data-app")
                                   for a in driver.find_elements(By.CSS_SELECTOR, "#launcher a.tile")]
        print(json.dumps(out))


if __name__ == "__main__":
    main()
