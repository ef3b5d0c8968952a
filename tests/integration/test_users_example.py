"""A test of your own on glueline's local stack (docs/developing.md, "Test your changes with pytest"): copy this file
into your project's tests/, install glueline, run pytest. The `glueline` fixture is the pipeline deployed
on a real local stack, emptied for each test."""

from datetime import datetime, timezone

CSV = """\
TransactionID,AccountNumber,CustomerID,TransactionDate,TransactionType,TransactionAmount,Currency,AccountBalance,BranchCode,MerchantCode,Description
1,ACC1,,2024-07-13,deposit,10.00,USD,100.00,7,12,blank CustomerID
2,ACC2,42,2024-02-30,deposit,10.00,USD,100.00,7,12,impossible date
3,ACC3,42,2024-07-13,deposit,10.00,DOLLARS,100.00,7,12,bad currency
"""


def test_the_cleaning_rules(glueline, tmp_path):
    upload = glueline.upload_bytes(tmp_path, "mine.csv", CSV.encode())

    [record] = glueline.wait([upload])  # the file's audit item, once the pipeline has an outcome

    assert record.status == "COMPLETED"
    assert (record.counts.rows_read, record.counts.rows_loaded, record.counts.rows_rejected) == (3, 2, 1)
    assert glueline.keys("processed/") == ["processed/mine.csv"]
    blank, impossible = glueline.rows()  # the target table, a dict per row, by TransactionID
    assert blank["customerid"] == "N/A"
    assert impossible["transactiondate"] == datetime.now(timezone.utc).date()  # the run's date
