"""Turn a Trace into plotly figures and small Streamlit widgets. No model code here."""
