%% The users of ep_suite.hrl as JIDs; included among a suite's helpers
%% (functions must follow the suite's attributes).
-compile({nowarn_unused_function, [alice/0, bob/0]}).
alice() -> ep_test_host:jid(?ALICE).
bob() -> ep_test_host:jid(?BOB).
