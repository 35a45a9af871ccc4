"""The patient identity pages in a real browser: headless Chromium over WebDriver, on the demo
population of `megalis serve --demo`.

Usage: browser_patients.py BASE_URL STAFF_USERNAME PASSWORD

The identity-vigilance account signs in and adds a second factor on its profile page, searches
for the demo twins, opens a patient, opens the review queue, starts a "different patients"
decision and cancels it (the task stays open), then confirms it; it merges one patient into
another from the patient page (a confirmation page first) and undoes the merge. Every page is
checked for the accessibility basics (language, labels, captioned tables with header scopes, a
skip link, one h1, named buttons). Prints a JSON summary; failures raise.
"""

import json
import sys
import time

from browser_admin import check_accessibility, wait
from chromium import french_chromium, submit_login, totp
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


def search(driver, base, **fields):
    driver.get(f"{base}/patients")
    wait(driver, By.ID, "family")
    for name, value in fields.items():
        if name == "sex":
            Select(driver.find_element(By.ID, "sex")).select_by_value(value)
        else:
            driver.find_element(By.ID, name).send_keys(value)
    driver.find_element(By.ID, "search-submit").click()
    wait(driver, By.CSS_SELECTOR, "[role=status]")
    return [r.get_attribute("data-patient")
            for r in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")]


def main():
    base, user, password = sys.argv[1:4]
    out = {"problems": []}
    with french_chromium() as driver:
        submit_login(driver, base, user, password)
        wait(driver, By.CSS_SELECTOR, "form[action='/logout']")
        # Second factor on the profile page: the session counts as two-factor afterwards.
        driver.get(f"{base}/profile")
        driver.find_element(By.ID, "totp-start").click()
        secret = wait(driver, By.ID, "totp-secret").text.strip()
        driver.find_element(By.ID, "totp-code").send_keys(totp(secret, time.time()))
        driver.find_element(By.CSS_SELECTOR, "form[action='/profile/totp/confirm'] button").click()
        wait(driver, By.ID, "recovery-codes")

        # Search from the navigation link.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/patients']").click()
        wait(driver, By.ID, "family")
        out["problems"] += check_accessibility(driver, "search")
        twins = search(driver, base, family="le duff")
        out["twins"] = len(twins)
        out["problems"] += check_accessibility(driver, "results")
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        tristan = next(r for r in rows if "Tristan" in r.text)
        tristan.find_element(By.CSS_SELECTOR, "th a").click()
        wait(driver, By.ID, "golden")
        out["problems"] += check_accessibility(driver, "patient")
        out["sources_of_tristan"] = len(driver.find_elements(By.CSS_SELECTOR, "[data-source]"))

        # The review queue, from the navigation.
        driver.find_element(By.CSS_SELECTOR, "nav a[href='/identity/reviews']").click()
        wait(driver, By.ID, "open-count")
        out["problems"] += check_accessibility(driver, "queue")
        out["queue_before"] = len(driver.find_elements(By.CSS_SELECTOR, "#reviews tbody tr"))
        row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "#reviews tbody tr")
                   if "CADIOU" in r.text)
        review_id = row.get_attribute("data-review")
        row.find_element(By.LINK_TEXT, "Examiner").click()
        wait(driver, By.ID, "comparison")
        out["problems"] += check_accessibility(driver, "review")
        # One click only opens the confirmation page; cancelling there decides nothing.
        driver.find_element(By.ID, "decide-distinct").click()
        wait(driver, By.ID, "confirm-form")
        out["problems"] += check_accessibility(driver, "confirm review")
        driver.find_element(By.ID, "cancel").click()
        wait(driver, By.ID, "comparison")
        out["cancel_kept_task_open"] = bool(driver.find_elements(By.ID, "decide-distinct"))
        driver.find_element(By.ID, "decide-distinct").click()
        wait(driver, By.ID, "confirm-form")
        driver.find_element(By.ID, "confirm").click()
        wait(driver, By.ID, "open-count")
        out["decision_notice"] = driver.find_element(By.CSS_SELECTOR, "[role=status]").text
        out["queue_after"] = len(driver.find_elements(By.CSS_SELECTOR, "#reviews tbody tr"))
        out["review_decided"] = review_id not in [
            r.get_attribute("data-review")
            for r in driver.find_elements(By.CSS_SELECTOR, "#reviews tbody tr")]

        # Merge PAUGAM into PERRIN from PERRIN's page, then undo it.
        paugam = search(driver, base, family="paugam")[0]
        perrin = search(driver, base, family="perrin")[0]
        driver.get(f"{base}/patients/{perrin}")
        wait(driver, By.ID, "other").send_keys(paugam)
        driver.find_element(By.ID, "merge-preview").click()
        wait(driver, By.ID, "confirm-form")
        out["problems"] += check_accessibility(driver, "confirm merge")
        driver.find_element(By.ID, "confirm").click()
        wait(driver, By.ID, "golden")
        out["merged_notice"] = bool(driver.find_elements(By.CSS_SELECTOR, "[role=status]"))
        merge = driver.find_element(By.CSS_SELECTOR, "#merges tbody tr[data-merge]")
        merge.find_element(By.CSS_SELECTOR, "button").click()
        wait(driver, By.ID, "confirm-form")
        out["problems"] += check_accessibility(driver, "confirm unmerge")
        driver.find_element(By.ID, "confirm").click()
        wait(driver, By.ID, "golden")
        out["unmerged_notice"] = bool(driver.find_elements(By.CSS_SELECTOR, "[role=status]"))
        out["sources_back"] = (
            paugam in driver.current_url
            and bool(driver.find_elements(By.CSS_SELECTOR, "[data-source='29200003']"))
            and not driver.find_elements(By.ID, "merged-into"))
        print(json.dumps(out))


if __name__ == "__main__":
    main()
