using EdgeRunner.Models.Postprocessing.Sequence;

namespace EdgeRunner.UnitTests.Sequence;

public sealed class HysteresisTriggerTests
{
    private static string Run(HysteresisTrigger trigger, params double[] scores) =>
        string.Concat(scores.Select(s => trigger.Update(s) switch { TriggerTransition.Raised => 'R', TriggerTransition.Cleared => 'C', _ => '.' }));

    [Fact]
    public void A_score_hovering_between_the_thresholds_does_not_flap()
    {
        var trigger = new HysteresisTrigger(threshold: 0.5, clearThreshold: 0.35);
        Assert.Equal("..R...C.", Run(trigger, 0.1, 0.49, 0.5, 0.4, 0.36, 0.49, 0.34, 0.45));
        Assert.False(trigger.Active);
    }

    [Fact]
    public void Raise_and_clear_wait_for_consecutive_steps_and_a_break_restarts_the_count()
    {
        var trigger = new HysteresisTrigger(threshold: 1, clearThreshold: 0.5, raiseSteps: 3, clearSteps: 2);
        // 2,2 then 0 breaks the run; 2,2,2 raises on the third. 0.1 then 0.6 breaks the clear run; 0.1,0.1 clears.
        Assert.Equal(".....R...C", Run(trigger, 2, 2, 0, 2, 2, 2, 0.1, 0.6, 0.1, 0.1));
        Assert.False(trigger.Active);
    }

    [Fact]
    public void Nan_breaks_a_run_and_reset_clears_an_active_condition()
    {
        var trigger = new HysteresisTrigger(threshold: 1, clearThreshold: 1, raiseSteps: 2);
        Assert.Equal("...R", Run(trigger, 5, double.NaN, 5, 5));
        trigger.Reset();
        Assert.False(trigger.Active);
        Assert.Equal(".R", Run(trigger, 5, 5));
    }

    [Fact]
    public void A_clear_threshold_above_the_threshold_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HysteresisTrigger(threshold: 0.3, clearThreshold: 0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HysteresisTrigger(threshold: 0.5, clearThreshold: 0.3, raiseSteps: 0));
    }
}
