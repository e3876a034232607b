// The event batcher's wake-up decisions (native/src/delivery_gate.h): one wake-up per batch when the
// engine is idle, none inside a coalescing window, and never an event left without a delivery queued
// or a window whose end will queue one.
#include "../src/delivery_gate.h"

#include <gtest/gtest.h>

#include <random>

namespace parafork {
namespace {

TEST(DeliveryGate, AnIdleEngineQueuesOneDeliveryForTheFirstEventAndNoneForTheNext) {
  DeliveryGate gate;
  EXPECT_TRUE(gate.OnPush().queue_delivery);
  EXPECT_FALSE(gate.OnPush().queue_delivery) << "a delivery is already queued and will take both";
  EXPECT_EQ(gate.OnDeliveryStart(), 2u);
  const DeliveryGate::Action after = gate.OnDeliveryEnd(/*saturated=*/false);
  EXPECT_FALSE(after.arm_window);
  EXPECT_FALSE(after.queue_delivery);
  EXPECT_TRUE(gate.OnPush().queue_delivery) << "not saturated: the next event goes at once";
}

TEST(DeliveryGate, ASaturatedEngineGathersUntilTheWindowEnds) {
  DeliveryGate gate;
  ASSERT_TRUE(gate.OnPush().queue_delivery);
  gate.OnDeliveryStart();
  EXPECT_TRUE(gate.OnDeliveryEnd(/*saturated=*/true).arm_window);
  for (int event = 0; event < 5; ++event) EXPECT_FALSE(gate.OnPush().queue_delivery);
  EXPECT_TRUE(gate.OnWindowEnd().queue_delivery);
  EXPECT_EQ(gate.OnDeliveryStart(), 5u);
  EXPECT_TRUE(gate.OnDeliveryEnd(/*saturated=*/true).arm_window) << "still saturated: gather again";
}

TEST(DeliveryGate, AWindowThatGatheredNothingQueuesNothingAndTheNextEventGoesAtOnce) {
  DeliveryGate gate;
  gate.OnPush();
  gate.OnDeliveryStart();
  gate.OnDeliveryEnd(/*saturated=*/true);
  EXPECT_FALSE(gate.OnWindowEnd().queue_delivery);
  EXPECT_TRUE(gate.OnPush().queue_delivery);
}

// The bug this gate was cut out to test: a delivery queued before a window began runs inside it,
// events arrive while its callback runs (no wake-up: gathering), and it ends unsaturated. Ending the
// window there must queue those events; the window's timer, when it fires, finds nothing to end.
TEST(DeliveryGate, EndingAWindowEarlyQueuesWhatItGathered) {
  DeliveryGate gate;
  ASSERT_TRUE(gate.OnPush().queue_delivery);  // delivery A queued
  gate.OnDeliveryStart();                     // A runs...
  ASSERT_TRUE(gate.OnPush().queue_delivery);  // ...an event meanwhile queues B
  EXPECT_TRUE(gate.OnDeliveryEnd(/*saturated=*/true).arm_window);  // A ends: a window begins
  gate.OnDeliveryStart();                     // B runs inside the window...
  EXPECT_FALSE(gate.OnPush().queue_delivery);  // ...an event meanwhile gathers
  EXPECT_TRUE(gate.OnDeliveryEnd(/*saturated=*/false).queue_delivery) << "the gathered event was left behind";
  EXPECT_FALSE(gate.OnWindowEnd().queue_delivery) << "the delivery is already queued";
  EXPECT_EQ(gate.OnDeliveryStart(), 1u);
}

// Random interleavings of events, deliveries (starting and ending, saturated or not), timers firing
// and timers firing late (after a re-arm), against the promise in delivery_gate.h.
TEST(DeliveryGate, NoInterleavingLeavesAnEventBehind) {
  for (unsigned seed = 1; seed <= 200; ++seed) {
    std::mt19937 random(seed);
    DeliveryGate gate;
    bool delivery_queued = false;
    bool delivery_running = false;
    bool timer_armed = false;
    auto act = [&](DeliveryGate::Action action) {
      if (action.queue_delivery) {
        ASSERT_FALSE(delivery_queued) << "two deliveries queued at once (seed " << seed << ")";
        delivery_queued = true;
      }
      if (action.arm_window) timer_armed = true;
    };
    for (int step = 0; step < 2000; ++step) {
      switch (random() % 6) {
        case 0:
        case 1:
          act(gate.OnPush());
          break;
        case 2:
          if (delivery_queued && !delivery_running) {
            delivery_queued = false;
            delivery_running = true;
            gate.OnDeliveryStart();
          }
          break;
        case 3:
          if (delivery_running) {
            delivery_running = false;
            act(gate.OnDeliveryEnd(random() % 2 == 0));
          }
          break;
        case 4:
          if (timer_armed) {
            timer_armed = false;
            act(gate.OnWindowEnd());
          }
          break;
        case 5:
          if (random() % 8 == 0) act(gate.OnWindowEnd());  // a late callback of an earlier timer
          break;
      }
      ASSERT_EQ(delivery_queued, gate.queued()) << "seed " << seed << " step " << step;
      if (gate.pending() > 0) {
        ASSERT_TRUE(delivery_queued || (gate.gathering() && timer_armed))
            << "an event has no delivery coming (seed " << seed << " step " << step << ")";
      }
    }
    // Load ends: whatever is queued or gathering still arrives.
    for (int round = 0; round < 10 && (gate.pending() > 0 || delivery_running); ++round) {
      if (delivery_running) {
        delivery_running = false;
        act(gate.OnDeliveryEnd(false));
      }
      if (timer_armed) {
        timer_armed = false;
        act(gate.OnWindowEnd());
      }
      if (delivery_queued) {
        delivery_queued = false;
        gate.OnDeliveryStart();
        act(gate.OnDeliveryEnd(false));
      }
    }
    EXPECT_EQ(gate.pending(), 0u) << "seed " << seed;
  }
}

}  // namespace
}  // namespace parafork
