"""`make demo`: the whole system on simulated patients, summarized and plotted."""
