"""The portal's administration pages in a real browser: headless Chromium over WebDriver.

Usage: browser_admin.py BASE_URL ADMIN_USERNAME PASSWORD

An administrator signs in, creates a professional account on the accounts page, opens an
application to that person on the grants page; the new user signs in and sees the application in
the launcher; the administrator disables the account and the user can no longer sign in; the
grant is removed again. Each admin page is checked for the accessibility basics (a language, a
label for every field, captioned tables with header scopes, a keyboard skip link). Prints a JSON
summary; failures raise.
"""

import json
import time
import sys

from chromium import french_chromium, submit_login, totp
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

NEW_USER = "ykerbrat"
NEW_NATIONAL_ID = "810007654321"
NEW_PASSWORD = "Enez-Eusa-Ar-Gouloù-29!"


def wait(driver, by, what):
    return WebDriverWait(driver, 20).until(EC.presence_of_element_located((by, what)))


def sign_out(driver):
    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait(driver, By.ID, "login-submit")


def check_accessibility(driver, page):
    """WCAG basics a screen-reader or keyboard user relies on; returns the problems found."""
    problems = []
    if not driver.find_element(By.TAG_NAME, "html").get_attribute("lang"):
        problems.append(f"{page}: no lang")
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
        fid = field.get_attribute("id")
        if not fid or not driver.find_elements(By.CSS_SELECTOR, f"label[for='{fid}']"):
            problems.append(f"{page}: field {field.get_attribute('name')} has no label")
    for table in driver.find_elements(By.TAG_NAME, "table"):
        if not table.find_elements(By.TAG_NAME, "caption"):
            problems.append(f"{page}: table without caption")
        for th in table.find_elements(By.TAG_NAME, "th"):
            if th.get_attribute("scope") not in ("col", "row"):
                problems.append(f"{page}: th without scope")
    for button in driver.find_elements(By.TAG_NAME, "button"):
        if not (button.text.strip() or button.get_attribute("aria-label")):
            problems.append(f"{page}: button without a name")
    if not driver.find_elements(By.CSS_SELECTOR, "a.skip"):
        problems.append(f"{page}: no skip link")
    if len(driver.find_elements(By.TAG_NAME, "h1")) != 1:
        problems.append(f"{page}: not exactly one h1")
    return problems


def main():
    base, admin, password = sys.argv[1:4]
    out = {"problems": []}
    with french_chromium() as driver:
        submit_login(driver, base, admin, password)
        # The administrator has no application: the home page, without a launcher list.
        wait(driver, By.CSS_SELECTOR, "form[action='/logout']")
        # Without a second factor the administration pages are refused, saying what to do.
        driver.get(f"{base}/admin/accounts")
        out["refused_without_second_factor"] = (
            not driver.find_elements(By.ID, "new-username")
            and "/profile" in driver.find_element(By.TAG_NAME, "body").text)
        # Enrol TOTP on the profile page, sign out, sign in again with a code.
        driver.get(f"{base}/profile")
        driver.find_element(By.ID, "totp-start").click()
        secret = wait(driver, By.ID, "totp-secret").text.strip()
        enrolled_at = time.time()
        driver.find_element(By.ID, "totp-code").send_keys(totp(secret, enrolled_at))
        driver.find_element(By.CSS_SELECTOR, "form[action='/profile/totp/confirm'] button").click()
        wait(driver, By.ID, "recovery-codes")
        sign_out(driver)
        submit_login(driver, base, admin, password, totp(secret, enrolled_at + 30))
        wait(driver, By.CSS_SELECTOR, "form[action='/logout']")

        # Accounts page: create a professional account.
        driver.get(f"{base}/admin/accounts")
        wait(driver, By.ID, "new-username")
        out["problems"] += check_accessibility(driver, "accounts")
        driver.find_element(By.ID, "new-username").send_keys(NEW_USER)
        Select(driver.find_element(By.ID, "new-kind")).select_by_value("professional")
        driver.find_element(By.ID, "new-name").send_keys("Yann Kerbrat")
        driver.find_element(By.ID, "new-nid").send_keys(NEW_NATIONAL_ID)
        driver.find_element(By.ID, "new-password").send_keys(NEW_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form[action='/admin/accounts'] button").click()
        out["account_created"] = wait(driver, By.CSS_SELECTOR, "[role=status]").text
        rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]
        out["account_listed"] = any(NEW_USER in r and NEW_NATIONAL_ID in r for r in rows)

        # Grants page: open breizh-rein to that person.
        driver.get(f"{base}/admin/grants")
        wait(driver, By.ID, "grant-value")
        out["problems"] += check_accessibility(driver, "grants")
        Select(driver.find_element(By.ID, "grant-app")).select_by_visible_text("breizh-rein")
        Select(driver.find_element(By.ID, "grant-kind")).select_by_visible_text("individual")
        # The administrator types the user name; the rule is stored with the person's national
        # id (8 + RPPS), what grants are matched on.
        driver.find_element(By.ID, "grant-value").send_keys(NEW_USER)
        driver.find_element(By.CSS_SELECTOR, "form[action='/admin/grants'] button").click()
        wait(driver, By.CSS_SELECTOR, "[role=status]")
        out["grant_listed"] = any(
            NEW_NATIONAL_ID in r.text and "individual" in r.text
            for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr"))
        sign_out(driver)

        # The new user sees the application in the launcher.
        submit_login(driver, base, NEW_USER, NEW_PASSWORD)
        wait(driver, By.ID, "launcher")
        out["new_user_tiles"] = [a.get_attribute("data-app")
                                 for a in driver.find_elements(By.CSS_SELECTOR, "#launcher a.tile")]
        # Not an administrator: the admin pages refuse them.
        driver.get(f"{base}/admin/accounts")
        out["new_user_admin_refused"] = not driver.find_elements(By.ID, "new-username")
        driver.get(f"{base}/")
        sign_out(driver)

        # The administrator disables the account; its owner can no longer sign in. Each TOTP
        # step is accepted once and the first sign-in used step S+1 (S: the enrolment's): the
        # code of S+2 is accepted once the server's clock is in S+1 (one step of skew).
        step = int(enrolled_at) // 30
        while int(time.time()) // 30 < step + 1:
            time.sleep(0.5)
        submit_login(driver, base, admin, password, totp(secret, (step + 2) * 30))
        wait(driver, By.CSS_SELECTOR, "form[action='/logout']")
        driver.get(f"{base}/admin/accounts")
        driver.find_element(
            By.CSS_SELECTOR, f"button[aria-label$=' {NEW_USER}']").click()
        out["disabled_notice"] = wait(driver, By.CSS_SELECTOR, "[role=status]").text
        # Remove the grant again with the row's own button.
        driver.get(f"{base}/admin/grants")
        driver.find_element(
            By.CSS_SELECTOR, f"button[aria-label*='individual {NEW_NATIONAL_ID}']").click()
        wait(driver, By.CSS_SELECTOR, "[role=status]")
        out["grant_after_removal"] = any(
            NEW_NATIONAL_ID in r.text for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr"))
        sign_out(driver)
        submit_login(driver, base, NEW_USER, NEW_PASSWORD)
        out["disabled_login_alert"] = bool(wait(driver, By.CSS_SELECTOR, "[role=alert]").text)
        out["disabled_user_has_launcher"] = bool(driver.find_elements(By.ID, "launcher"))
        print(json.dumps(out))


if __name__ == "__main__":
    main()
