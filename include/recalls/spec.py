"""The published recall CSV contract: column headers and rejection reasons.

Codes are stable identifiers (stored in the warehouse, used by operators and tests); the wording
is the spec's own text, which is what manufacturers see in their email.
"""

from __future__ import annotations

from enum import StrEnum

HEADERS: tuple[str, ...] = (
    "VIN",
    "ManufacturerRecallCampaignReference",
    "DVSACampaignReference",
    "RecallCampaignStartDate",
)
REFERENCE_MAX_LENGTH = 50
REFERENCE_PATTERN = r"[A-Za-z0-9\-_\\/]*"


class Code(StrEnum):
    INFECTED_FILE = "INFECTED_FILE"
    WRONG_FILE_EXTENSION = "WRONG_FILE_EXTENSION"
    SPACES_IN_FILE_NAME = "SPACES_IN_FILE_NAME"
    EMPTY_FILE = "EMPTY_FILE"
    WRONG_ENCODING = "WRONG_ENCODING"
    MISSING_COLUMN_HEADERS = "MISSING_COLUMN_HEADERS"
    COLUMNS_WRONG_ORDER = "COLUMNS_WRONG_ORDER"
    UNEXPECTED_COLUMN_HEADERS = "UNEXPECTED_COLUMN_HEADERS"
    MALFORMED_ROW = "MALFORMED_ROW"
    MISSING_REQUIRED_FIELDS = "MISSING_REQUIRED_FIELDS"
    INCORRECT_DATE_FORMAT = "INCORRECT_DATE_FORMAT"
    MANUFACTURER_REF_TOO_LONG = "MANUFACTURER_REF_TOO_LONG"
    DVSA_REF_TOO_LONG = "DVSA_REF_TOO_LONG"
    INVALID_MANUFACTURER_REF = "INVALID_MANUFACTURER_REF"
    INVALID_DVSA_REF = "INVALID_DVSA_REF"
    CONFLICTING_DUPLICATE = "CONFLICTING_DUPLICATE"
    MULTIPLE_FILES = "MULTIPLE_FILES"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"


class Warning_(StrEnum):
    DUPLICATE_ROW = "DUPLICATE_ROW"
    VIN_NOT_ISO_3779 = "VIN_NOT_ISO_3779"


# The spec's wording where it has one; a plain, specific sentence where it is silent.
WORDING: dict[str, str] = {
    Code.INFECTED_FILE: "Infected file",
    Code.WRONG_FILE_EXTENSION: "Wrong file extension",
    Code.SPACES_IN_FILE_NAME: "Spaces in the file name",
    Code.EMPTY_FILE: "Empty file",
    Code.WRONG_ENCODING: "Wrong encoding format",
    Code.MISSING_COLUMN_HEADERS: "Missing column headers",
    Code.COLUMNS_WRONG_ORDER: "Columns in the wrong order",
    Code.UNEXPECTED_COLUMN_HEADERS: "Unexpected column headers",
    Code.MALFORMED_ROW: "Rows with the wrong number of fields",
    Code.MISSING_REQUIRED_FIELDS: "Missing required fields",
    Code.INCORRECT_DATE_FORMAT: "Incorrect date format",
    Code.MANUFACTURER_REF_TOO_LONG: "Manufacturer Recall Campaign Reference too long",
    Code.DVSA_REF_TOO_LONG: "DVSA Recall Campaign Reference too long",
    Code.INVALID_MANUFACTURER_REF: "Invalid Manufacturer Recall Campaign Reference",
    Code.INVALID_DVSA_REF: "Invalid DVSA Recall Campaign Reference",
    Code.CONFLICTING_DUPLICATE: "Conflicting duplicate recalls",
    Code.MULTIPLE_FILES: "Multiple files uploaded",
    Code.FILE_TOO_LARGE: "File too large",
    Warning_.DUPLICATE_ROW: "Duplicate row (accepted once)",
    Warning_.VIN_NOT_ISO_3779: "VIN is not 17 characters or contains I, O or Q",
}

# What the spec says each reason means, for the email body.
DESCRIPTION: dict[str, str] = {
    Code.INFECTED_FILE: "The file has failed anti-virus scanning.",
    Code.WRONG_FILE_EXTENSION: "The file extension needs to be .csv (not case-sensitive).",
    Code.SPACES_IN_FILE_NAME: "There should be no spaces in the file name.",
    Code.EMPTY_FILE: "The file has no content: it must contain the 4 column headers.",
    Code.WRONG_ENCODING: "The format of the file is not set to Unicode (UTF-8).",
    Code.MISSING_COLUMN_HEADERS: (
        "The file is missing some or all of the column headers. All column headers are "
        "mandatory, including the DVSA Campaign Reference."
    ),
    Code.COLUMNS_WRONG_ORDER: "The column headers must be in the exact order specified.",
    Code.UNEXPECTED_COLUMN_HEADERS: "The CSV file must contain exactly the 4 column headers.",
    Code.MALFORMED_ROW: "Each row must have exactly 4 fields, separated by commas.",
    Code.MISSING_REQUIRED_FIELDS: (
        "Some or all of the required fields have been left blank. The mandatory fields are VIN, "
        "Manufacturer Recall Campaign Reference, and Recall Campaign Start Date."
    ),
    Code.INCORRECT_DATE_FORMAT: "The Recall Campaign Start Date is not in the format YYYY-MM-DD.",
    Code.MANUFACTURER_REF_TOO_LONG: "The Manufacturer Campaign Reference is longer than 50 characters.",
    Code.DVSA_REF_TOO_LONG: "The DVSA Campaign Reference is longer than 50 characters.",
    Code.INVALID_MANUFACTURER_REF: "The Manufacturer Campaign Reference contains invalid characters.",
    Code.INVALID_DVSA_REF: "The DVSA Campaign Reference contains invalid characters.",
    Code.CONFLICTING_DUPLICATE: (
        "The same VIN and Manufacturer Recall Campaign Reference appear more than once with different values."
    ),
    Code.MULTIPLE_FILES: (
        "You have sent another file while your previous file is still being processed. "
        "Only one file should be sent per day."
    ),
    Code.FILE_TOO_LARGE: "The file is larger than the service accepts.",
}
