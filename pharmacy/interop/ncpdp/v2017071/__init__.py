"""NCPDP SCRIPT 2017071: builders (:mod:`.build`) and reader (:mod:`.read`)."""
